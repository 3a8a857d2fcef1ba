"""The `pitbox` command: composes the gateway's, the cloud's and the firmware's subcommands.

This package exists so that one entry point can offer all three without `gateway` importing
`cloud` (ARCHITECTURE.md's dependency rule); it also holds `pitbox demo`, which starts parts
of all three.
"""
