"""Recording what upstreams answered, to replay it later."""
