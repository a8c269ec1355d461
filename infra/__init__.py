"""Resource definitions, the emulator bootstrap and the local runtime."""
