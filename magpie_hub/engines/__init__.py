"""Engine building blocks shared by the engine plugins."""
