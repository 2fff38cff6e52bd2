"""Network definitions and module utilities that depend on torch only (the lowest layer above ferkit's core).

The three face networks whose foreign weight files ``ferkit.convert`` reads (dlib's face-recognition ResNet,
MediaPipe FaceMesh, the 68-point MobileFaceNet of POSTER++) live here, so that the converters and the model families
can both use them without depending on each other; :mod:`ferkit.nn.optimize` holds the inference speed-ups
(BatchNorm folding, channels-last) shared by the models and the face detectors.
"""
