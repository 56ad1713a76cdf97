"""groundset's NLI cross-encoder: data, synthetic claims, training, ONNX export, evaluation."""
