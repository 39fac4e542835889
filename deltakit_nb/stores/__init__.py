"""Where runs and their events are kept."""
