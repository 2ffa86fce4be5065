"""Run in the protocol clients' own virtualenv: talk to a server with tritonclient and KServe.

``python talk.py BASE_URL MODEL`` prints one JSON object: what each client call returned;
``python talk.py BASE_URL MODEL ROWS`` asks a classifier for ROWS (JSON columns) with tritonclient.
The test that starts it (tests/test_protocol_clients.py) asserts on that object.
"""

import asyncio
import json
import sys

import numpy as np
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


def with_triton(base_url: str, model: str) -> dict:
    client = triton.InferenceServerClient(url=base_url.removeprefix("http://"))
    weights = triton.InferInput("Weight", [3], "FP64")
    weights.set_data_from_numpy(np.array([180.0, 200.0, 250.0]), binary_data=False)
    outputs = [
        triton.InferRequestedOutput("height_inches", binary_data=False),
        triton.InferRequestedOutput("height_human_readable", binary_data=False),
    ]
    result = client.infer(model, [weights], outputs=outputs, request_id="triton-1")
    try:
        client.get_model_metadata("no-such-model")
        unknown = "answered"
    except triton.InferenceServerException as exc:
        unknown = exc.status()
    return {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "metadata": client.get_model_metadata(model),
        "height_inches": result.as_numpy("height_inches").tolist(),
        "human": [
            v.decode() if isinstance(v, bytes) else v
            for v in result.as_numpy("height_human_readable").tolist()
        ],
        "id": result.get_response()["id"],
        "unknown_model_status": unknown,
    }


async def with_kserve(base_url: str, model: str) -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=10))
    weights = InferInput("Weight", [2], "FP32")
    weights.set_data_from_numpy(np.array([200.0, 180.0], dtype=np.float32), binary_data=False)
    response = await client.infer(
        base_url, InferRequest(model, [weights], request_id="ks-1"), model_name=model
    )
    outputs = {output.name: output for output in response.outputs}
    found = {
        "live": await client.is_server_live(base_url),
        "ready": await client.is_server_ready(base_url),
        "model_ready": await client.is_model_ready(base_url, model),
        "height_inches": outputs["height_inches"].data,
        "human": outputs["height_human_readable"].data,
        "id": response.id,
        "model_version": response.model_version,
    }
    await client.close()
    return found


def classify_with_triton(base_url: str, model: str, rows: dict[str, list[float]]) -> dict:
    """Ask a classifier for its label and probabilities tensors, as a Triton user would."""
    client = triton.InferenceServerClient(url=base_url.removeprefix("http://"))
    inputs = []
    for name, values in rows.items():
        tensor = triton.InferInput(name, [len(values)], "FP64")
        tensor.set_data_from_numpy(np.array(values, dtype=np.float64), binary_data=False)
        inputs.append(tensor)
    outputs = [
        triton.InferRequestedOutput("label", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=False),
    ]
    result = client.infer(model, inputs, outputs=outputs)
    return {
        "metadata": client.get_model_metadata(model),
        "label": [
            v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()
        ],
        "probabilities": result.as_numpy("probabilities").tolist(),  # reshaped to [n, k]
    }


def main() -> None:
    base_url, model = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:  # a classifier, and the rows to classify as JSON columns
        print(json.dumps(classify_with_triton(base_url, model, json.loads(sys.argv[3]))))
        return
    print(
        json.dumps(
            {
                "triton": with_triton(base_url, model),
                "kserve": asyncio.run(with_kserve(base_url, model)),
            }
        )
    )


if __name__ == "__main__":
    main()
