"""The iRacing variables the shim relays and the box reads: one list, shared by both sides,
so a variable added for the box is a variable the shim sends."""

VARS = ("SessionTime", "SessionTimeOfDay", "SessionNum", "SessionState", "LapCompleted",
        "LapLastLapTime", "FuelLevel", "FuelUsePerHour", "OnPitRoad", "PlayerCarInPitStall",
        "PlayerTrackSurface", "Speed", "TrackTemp", "PitSvFlags", "PitSvFuel",
        "PlayerCarTowTime", "PitRepairLeft", "PitOptRepairLeft", "PlayerCarPosition")
"""The Teamtactics variable set (per-car arrays: `CAR_ARRAYS`)."""
CAR_ARRAYS = ("CarIdxLapCompleted", "CarIdxTrackSurface", "CarIdxOnPitRoad",
              "CarIdxLastLapTime", "CarIdxPosition")
