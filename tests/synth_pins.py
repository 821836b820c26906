"""The synthetic generator's pinned digests (``synth-4``): what every CPU must render (docs/DATA.md, "Versions").

Computed once with ``python tests/synth_pins.py`` (it prints the digests of the code at hand) and checked by
``tests/unit/test_synth_val.py`` (in process) and ``tests/integration/test_portable_data.py`` (under every CPU dispatch
setting this machine can run). A change of any digest is a new generator version.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

#: SHA-256 of (annotated labels, identity table in sorted key order, rendering chunk 0) of each split. The labels are
#: synth-1's (label draws use integer arithmetic only); identities and pixels are synth-4's.
PINNED_CHUNKS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("synth-lab", "train"): ("ecc6b0dafe077d96e06d8d1d768756b5a274a0ac7d1b8324e51345918082909a",
        "e36d5e623da3c69e3774f697851ac673e95239effe9026aa8f669c39610febe7",
        "ebbc6a4427ccad2f5d95df4def9598ecdf8784092af802e2780bd7b43de93125"),
    ("synth-lab", "test"): ("0863e9fb1033c2ee305d3da8a3f6024a13dc7412dfdd5102201ce8495b82f1f7",
        "a6b33697f2a861803b2cded5b08476781278f3ce0984674ff4b5a0b4f82d44c2",
        "de55384fa78de655237cf8fdb5ef281c170a28225125f0c3d240b43cab939af4"),
    ("synth-lab", "val"): ("6d93cbf0d59fe0295fe72f7d302dbb75ecfd8d43d9f99e63eae827e9f9a6661c",
        "25cb8a42a0bedd00a34f450772c928d418da0ec3911bde9bb38003dc8cb0b1a1",
        "f52fab09b7104b0443797202ededf9b53af77d7536f10e75acd062102cea9099"),
    ("synth-wild", "train"): ("54a228f1f4f968bea15086238d550f108c28773780f6eb8a4bf3f553b6545a5c",
        "1d39f2fa577cd2c5f9985f92dd4fe99f09f6e22a7c4042619832b1fc6e195165",
        "a44feec640baab53308f1b3572bf391add90351bd3bceea7fe2eea47f5abbaf1"),
    ("synth-wild", "test"): ("0eb5a4b329cb144554c578d3aa8c3369101f19210d64e7232ce6e6f3c4e31a1f",
        "9659bfcb9b93de1beab426eeb853a86b2267d655d993a0afae81c6d74737d4ea",
        "4d900be7cabab4e7019fc9e20d041d90d51e31adc30de34b0315b2b035a4f9a3"),
    ("synth-wild", "val"): ("acbccaab50e144e2bda1134cdf3235f524a0d30d2e9d70dc9574f484ebf471de",
        "53313a17360158bc086b6dbb231fcc920835b139b465326f6ef9acdeac7a7f64",
        "237b0c25e5995c01232c62627a1cd2390e943010d702ea599a5a34d3550cd5e1"),
    ("synth-lab-negative", "train"): ("ecc6b0dafe077d96e06d8d1d768756b5a274a0ac7d1b8324e51345918082909a",
        "e36d5e623da3c69e3774f697851ac673e95239effe9026aa8f669c39610febe7",
        "f9b09c1a90e64eeef4f76272b92d95532981b1dce841bc8152abfc53a2dcdf1b"),
    ("synth-lab-negative", "test"): ("0863e9fb1033c2ee305d3da8a3f6024a13dc7412dfdd5102201ce8495b82f1f7",
        "a6b33697f2a861803b2cded5b08476781278f3ce0984674ff4b5a0b4f82d44c2",
        "acc3427f41524c097e2937ae11fdcd09914480569396b529b770a9cfd5152560"),
    ("synth-lab-negative", "val"): ("6d93cbf0d59fe0295fe72f7d302dbb75ecfd8d43d9f99e63eae827e9f9a6661c",
        "25cb8a42a0bedd00a34f450772c928d418da0ec3911bde9bb38003dc8cb0b1a1",
        "21b82fa6704773680512d58966bedc934124b3d322af558cc7c8a41e9fb00caf"),
}

#: The whole cache files (``splits.<split>.images_sha256`` / ``labels_sha256`` of the manifest), same version.
PINNED_FILES: dict[tuple[str, str], tuple[str, str]] = {
    ("synth-lab", "test"): ("8f155084b7d0db9d6fc1a18dff6ab01e6a88aa067649b0b00c805591cc7e4a0d",
        "2df6ed44ed1912656f3e19e63856fc5aa07b5d45ba39f0e3e9833d33482c9a69"),
    ("synth-lab", "train"): ("ef43d8b3be80978fabdbba7b01935935572d272728d31874bb7be515af5d155c",
        "5e7c4f43f742c6bef6b34524b0230bdb716e770d2c9f12ce0e84c90f557ca1b2"),
    ("synth-lab", "val"): ("18164ee693480ebac9b0710c3c79faa029bb9976e78dac22c6638b07ac9f4e41",
        "27bcaa90285201067b1e689d6853497b106db9aa6ce7449185cfc49301f512af"),
    ("synth-wild", "test"): ("b9a8faa45eb2c2a39a5c6b5e0266b6330253f909d63f700fb6d89b680a079cfd",
        "eb017c7104f114821e605c2f186a3dba1bc63b66a835a90ecbe99a1d180c5722"),
    ("synth-wild", "train"): ("3c76287fab227faca8c278bf2411d7c1b857fb7c577ede4070f8c5328c79ce6f",
        "ebe92df5ea9defe221b0473ac801606963681a622aeb7329a4a0f14d79722742"),
    ("synth-wild", "val"): ("497846c18207514467523ae2311ee93091d5718f04f39cb2cae808206067b9b3",
        "5e329f9757d47fcad457dcc7febe7de608a22259fdc1c3a1f198a6b524849d6d"),
    ("synth-lab-negative", "train"): ("ec71eaf6f435d7f08f1c00b509d6795f33144dfc28861b5190d952710cd9464a",
        "5e7c4f43f742c6bef6b34524b0230bdb716e770d2c9f12ce0e84c90f557ca1b2"),
    ("synth-lab-negative", "test"): ("3f2d69ca1b701b5f4bec1d620e87e08cbd4ec530b37ad683344b48080e09c99f",
        "2df6ed44ed1912656f3e19e63856fc5aa07b5d45ba39f0e3e9833d33482c9a69"),
    ("synth-lab-negative", "val"): ("203d18f925b3cff354da093e3d29cc2505a33771071fac7d89f0c0c54de3233f",
        "27bcaa90285201067b1e689d6853497b106db9aa6ce7449185cfc49301f512af"),
}


def digest(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' bytes, in order."""
    sha = hashlib.sha256()
    for array in arrays:
        sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()


def chunk_digests() -> dict[tuple[str, str], tuple[str, str, str]]:
    """(labels, identity table, rendering chunk 0) digests of every split of every synthetic domain, as rendered
    by this process (the comparand of ``PINNED_CHUNKS``)."""
    from datasets.synth import DOMAINS, describe_plan, split_names
    from datasets.synth.pipeline import render_chunk

    out = {}
    for name in sorted(DOMAINS):
        spec = DOMAINS[name]
        for split in split_names(spec):
            plan = describe_plan(spec, split)
            identity = digest(*(plan.identity[key] for key in sorted(plan.identity)))
            out[name, split] = (digest(plan.labels), identity, digest(render_chunk(spec, plan, split, 0)))
    return out


if __name__ == "__main__":
    print(json.dumps({"/".join(key): value for key, value in chunk_digests().items()}, indent=1))
