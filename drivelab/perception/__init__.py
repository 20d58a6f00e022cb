"""Perception: camera images to the road-relative driving state (the CNN comes with the camera).

Its output type is :class:`drivelab.envs.observations.DrivingState`, the same vector the ``"state"``
observation carries, so a policy trained on ground truth will run unchanged on the estimate.
"""
