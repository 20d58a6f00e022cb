"""Perception: camera images to the road-relative driving state.

Its output type is :class:`drivelab.envs.observations.DrivingState`, the same vector the ``"state"``
observation carries, so a policy trained on ground truth runs unchanged on the estimate.

- :mod:`~drivelab.perception.dataset`: datasets of camera images with their driving state (numpy only).
- :mod:`~drivelab.perception.model`: the CNN (backbone + head), saving, loading, ``Perceiver``.
- :mod:`~drivelab.perception.training`: ``train_perception``, resumable from its checkpoint.
- :mod:`~drivelab.perception.evaluation`: ``evaluate_perception``, mean absolute error per feature.
- :mod:`~drivelab.perception.collect`: ``collect_dataset``, a driver's camera images and states.
- :mod:`~drivelab.perception.observation`: ``observation="perceived"``, the CNN in the env's loop.

Importing this package imports no torch; the modules that need it import it themselves.
"""
