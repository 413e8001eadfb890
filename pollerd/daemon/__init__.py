"""The running daemon: composition, schedule, endpoints, health, systemd, hand-off."""
