"""ROS 2 hosts (rclpy) around the pure code: the only place that imports rclpy or *_msgs."""
