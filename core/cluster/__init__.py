"""Past one machine: the same encoders and heads as stateful Ray Data actors on a cluster."""
