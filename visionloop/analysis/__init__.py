"""Pretrained image analysers behind one interface (core.records.analysis): labels with boxes, text,
moderation, faces.

    registry.py   create_analyser(kind) / list_analysers(): one lazily loaded instance per kind
    labels.py     LabelsAnalyser: EfficientNet-Lite ImageNet labels + SSD-MobileNet-v2 COCO boxes, merged
                  over the shipped hierarchy (hierarchy.py, data/labels.json built by taxonomy.py),
                  and image properties (properties.py)
    text.py       TextAnalyser (RapidOCR, PP-OCRv4)
    moderation.py ModerationAnalyser (NudeNet mapped onto Rekognition's moderation taxonomy)
    faces.py      FaceAnalyser (dlib: HOG detector, 68 landmarks, pose, quality, ResNet identity vectors),
                  with age and gender from age_gender.py (Cydral's networks as ONNX) when installed

Each analyser loads its model on first use (or ``warm_up()``), once per process, thread-safely, and
reports a ``version`` string."""
