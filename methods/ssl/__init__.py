"""Self-supervised target pretraining (SwAV, DeepClusterV2): losses, clustering and the solo-learn import."""
