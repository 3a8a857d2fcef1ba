# The two commands: `make demo` and `make test`. Both install what the machine lacks first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Mosquitto and what the broker auth plugin builds against (Debian 12 / Raspberry Pi OS bookworm).
DEB_PKGS := mosquitto mosquitto-dev libmosquitto-dev libcjson-dev libssl-dev gcc python3-venv systemd
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# f1-packets' 2026 release, for the layout cross-check in tests/unit/test_f1_vs_f1_packets.py:
# its module is named like the 2025 release pinned in the dev extra, so it has its own directory.
# Only `make test` needs it (bench/ decodes format 2025 only): `make demo` does not download it.
F1_2026_VERSION := 2026.1.1
F1_2026 := $(VENV)/f1-packets-2026

.PHONY: demo test deps venv f1-packets-2026 plugin lint bench sample clean

demo: deps venv plugin
	$(PY) -m pitbox demo

test: deps venv plugin f1-packets-2026
	$(PY) -m pytest -q

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

f1-packets-2026: $(F1_2026)/.installed-$(F1_2026_VERSION)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,cloud]'
	touch $@

# f1-packets 2026 (see F1_2026 above): a stamp of its own, named by version, so an existing venv
# gets it, and a new version, without rebuilding the venv.
$(F1_2026)/.installed-$(F1_2026_VERSION): | $(VENV)/.installed
	rm -rf $(F1_2026)
	$(PY) -m pip install -q --no-deps --target $(F1_2026) 'f1-packets==$(F1_2026_VERSION)'
	touch $@

plugin: venv
	$(PY) -m cloud.broker.build

lint: venv
	$(VENV)/bin/ruff check gateway cloud firmware pitbox tests bench
	$(VENV)/bin/mypy gateway cloud firmware pitbox

bench: deps venv plugin
	$(PY) -m pip install -q -e '.[bench]'  # f1-packets: bench/f1_decode.py's baseline
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Rebuild the shipped sample F1 session (deterministic: same bytes every time).
sample: venv
	$(PY) -m gateway.sim.f1 --out gateway/sim/sample_session.pbxcap

clean:
	rm -rf build $(VENV) .pytest_cache .mypy_cache .ruff_cache
