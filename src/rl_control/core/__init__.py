"""Pure learning code: networks, buffers, algorithms, training loop, bundles. No ROS."""
