"""The captioner: model, training, the caption job, trust in generated captions."""
