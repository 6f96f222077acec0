"""The model versions the AWS API answers. Our models carry descriptive names ("visionloop-labels-1.0
(efficientnet-lite0 + …)", "visionloop-faces-1 (dlib …)"), which the native API, the console and
docs/analysis.md keep; on the AWS API, code written for Rekognition reads a version number of the form
AWS answers ("3.0", "7.0") and may compare or parse it, so each feature answers the number of the current
AWS model it stands in for (Rekognition's API reference; docs/aws.md lists them)."""

from __future__ import annotations

LABEL_MODEL_VERSION = "3.0"  # DetectLabels' LabelModelVersion
TEXT_MODEL_VERSION = "3.0"  # DetectText's TextModelVersion
MODERATION_MODEL_VERSION = "7.0"  # DetectModerationLabels' ModerationModelVersion
FACE_MODEL_VERSION = "7.0"  # FaceModelVersion(s) of collections and searches, IndexFacesModelVersion
