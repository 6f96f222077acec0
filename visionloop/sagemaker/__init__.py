"""Amazon SageMaker's flow definitions (CreateFlowDefinition, DescribeFlowDefinition, ListFlowDefinitions,
DeleteFlowDefinition) on its JSON 1.1 protocol, kept apart from the Rekognition and A2I layers as moto
keeps each service apart. A flow definition is a project's review flow (core.review):

    urls.py        POST / with X-Amz-Target SageMaker.<Op> (aws/urls.py hands it over by the prefix);
                   SigV4 (service "sagemaker") when access keys are set; errors never a stack trace
    responses.py   one function per operation: check, call the backend, serialize
    requests.py    the request members checked as the model constrains them; CreateFlowDefinition's
                   fields mapped onto a review flow's settings
    backend.py     SageMaker's semantics over core.review (which project a flow is for, deletion)
    conditions.py  the activation conditions of Rekognition's DetectModerationLabels: checked, evaluated
    exceptions.py  the SageMaker errors (code and HTTP status) and the map from visionloop.errors
"""
