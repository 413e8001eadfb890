"""Election events: each feed's rules for what happened between two versions of a resource."""
