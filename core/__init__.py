"""The bottom layer every package builds on: errors, atomic file writes, what a method may know about a task,
named seed streams."""
