"""The keys tracing passes write into an fx node's `meta`, in one place, so that a pass can
read what another wrote without importing it (explain reads what shape propagation wrote,
and shape propagation asks explain to read a failure)."""

VALUE = "fxviz_value"  # the values the node made, as graph.Value
FLOPS = "fxviz_flops"
