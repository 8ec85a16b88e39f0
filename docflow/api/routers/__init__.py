"""The HTTP service's routes, one router per concern, over the `Depends` state of docflow.api.state."""
