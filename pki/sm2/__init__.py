"""SM2 signatures (GB/T 32918, GM/T 0009) behind one interface with three backends (Botan, Tongsuo, pure Python).

The backends only do the curve arithmetic on a digest ``e``; everything
that defines *what* is signed — Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA),
e = SM3(Z ‖ M), the DER encoding of (r, s) — lives in `pki.sm2.core`, once.
"""
from .core import (
    CURVE,
    DEFAULT_DISTID,
    SM2Backend,
    available_backends,
    backend_by_name,
    compute_z,
    default_backend,
    sm3,
)

__all__ = [
    "CURVE", "DEFAULT_DISTID", "SM2Backend", "available_backends", "backend_by_name",
    "compute_z", "default_backend", "sm3",
]
