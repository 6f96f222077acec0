"""The Rekognition-compatible API (AWS JSON 1.1), kept apart from the native REST API as moto keeps each
service apart:

    urls.py        POST / with X-Amz-Target: RekognitionService.<Op>; auth hook, JSON in and out; awaits
                   the Deferred answer of DetectCustomLabels without holding a thread
    responses.py   one method per operation: parse and check parameters, call the backend, serialize
    params.py      checked access to request members (what botocore does not check)
    images.py      the Image member: Bytes or S3Object, within Rekognition's byte limits
    pagination.py  opaque, stable NextToken / MaxResults
    backend.py     Rekognition's semantics over the core use cases (datasets.py: its dataset half); the
                   serving operations call core.serving with the server's Serving (app.state.serving)
    resources.py   ARNs to core records and back;  arns.py: parsing ARNs
    metadata.py    tags, dataset status, model version OutputConfig (JSON documents in the store)
    shapes.py      core records to Rekognition JSON
    exceptions.py  AWS errors with code and HTTP status; the map from visionloop.errors
    auth.py        the authentication hook; sigv4.py: the SigV4 verifier installed when access keys are set
    coverage.py    the operations table of docs/aws.md, generated from responses.py
"""
