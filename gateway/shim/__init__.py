"""`pitbox shim`: the iRacing PC's side. pyirsdk → changed variables → framed, HMAC'd msgpack
over TCP to the box's relay. From the box it imports only `gateway.decode.irsdk` (the frame
protocol and the header checks, both pure), so it packs into one small Windows executable."""
