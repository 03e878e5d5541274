"""The serving loop, pure (no ROS): bundle -> policy -> contract -> safety -> command."""
