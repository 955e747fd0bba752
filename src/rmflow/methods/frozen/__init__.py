"""Methods on a frozen backbone (armo, tree): backbone (loading, embedding, copying one) and armo_math (ridge
probes, verbosity debiasing, the gate)."""
