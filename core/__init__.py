"""The bottom layer every package builds on: errors, atomic IO, what a method may know about a task, seeding."""
