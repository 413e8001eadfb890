"""The command line's commands beyond ``run``: reports, redelivery, demo."""
