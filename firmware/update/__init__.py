"""Signed fleet updates: `manifest` (Ed25519, pure), `bundle` (the tar on disk), `download`
(resumable HTTP), `slots` (A/B virtualenvs + the `current` symlink), `installer` (venv + pip,
offline), `gate` (the gateway's health file), `updater` (the whole transaction), `build` (the
fleet owner's tool), `cli` (`pitbox update`)."""
