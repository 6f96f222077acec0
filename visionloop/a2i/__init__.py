"""The Amazon Augmented AI runtime API (``sagemaker-a2i-runtime``, REST-JSON under ``/human-loops``), kept
apart from the native REST API and from the Rekognition layer as moto keeps each service apart:

    urls.py        the routes: POST/GET /human-loops, GET/DELETE /human-loops/{name}, POST
                   /human-loops/stop; SigV4 (service "sagemaker") when access keys are set; JSON in and
                   out, errors with the X-Amzn-ErrorType header, never a stack trace
    responses.py   one function per operation: parse and check the request as the model constrains it
                   (what botocore does not check), call the backend, serialize
    backend.py     A2I's semantics over core.review (flow ARNs, error kinds per operation)
    exceptions.py  the A2I errors (code and HTTP status) and the map from visionloop.errors
"""
