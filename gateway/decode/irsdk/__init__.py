"""Pure iRacing pieces the box and the shim share: shim frames, irsdk header validation,
session-info YAML. No sockets, no clocks; files only as bytes handed in."""
