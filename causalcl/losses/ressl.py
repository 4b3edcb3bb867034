"""ReSSL's relational loss: match the student's similarity distribution over a memory queue to the teacher's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import check_embeddings, check_pair, check_temperature, normalize


def ressl_loss(z_student: Tensor, z_teacher: Tensor, queue: Tensor, tau_s: float = 0.1,
               tau_t: float = 0.04) -> Tensor:
    r"""Relational loss of ReSSL (Zheng, You, Wang, Qian, Zhang, Wang, Xu, NeurIPS 2021, "ReSSL:
    Relational Self-Supervised Learning with Weak Augmentation", arXiv 2107.09282).

    With unit rows s_i (student), t_i (teacher) and the K unit keys q_k of the queue::

        p^t_ik = exp(t_i.q_k / tau_t) / sum_j exp(t_i.q_j / tau_t)     (teacher, sharp: tau_t < tau_s)
        p^s_ik = exp(s_i.q_k / tau_s) / sum_j exp(s_i.q_j / tau_s)     (student)
        L      = -1/N * sum_i sum_k p^t_ik log p^s_ik

    i.e. the cross-entropy H(p^t, p^s); the paper's KL(p^t || p^s) differs from it by the teacher's
    entropy, a constant for the student, so both have the same gradients (the official code
    minimises this cross-entropy). The teacher distribution is a target: ``z_teacher`` is detached
    inside, as in the official code. All three inputs are L2-normalised inside (a no-op for a queue
    of unit keys). Half-precision inputs are evaluated in float32 outside autocast, because the
    teacher's temperature of 0.04 turns bfloat16 rounding of the cosines into visible logit noise.

    Args:
        z_student: (N, D) student embeddings (gradients flow).
        z_teacher: (N, D) teacher (EMA network) embeddings of the paired view; no gradient.
        queue: (K, D) keys of the memory queue, K >= 2; no gradient.
        tau_s: student temperature (default 0.1).
        tau_t: teacher temperature (default 0.04).

    Returns:
        Scalar tensor: the mean cross-entropy over the N anchors.

    Raises:
        ValueError: bad shapes/dtypes/devices, non-finite inputs, or a temperature <= 0.
    """
    check_pair(z_student, z_teacher)
    check_embeddings(queue, "queue")
    if queue.shape[1] != z_student.shape[1]:
        raise ValueError(f"queue must have D = {z_student.shape[1]} columns like z_student, got {tuple(queue.shape)}")
    if queue.device != z_student.device:
        raise ValueError(f"queue must be on the device of z_student ({z_student.device}), got {queue.device}")
    ts = check_temperature(tau_s, "tau_s")
    tt = check_temperature(tau_t, "tau_t")
    dtype = torch.promote_types(z_student.dtype, torch.float32)
    with torch.autocast(z_student.device.type, enabled=False):
        keys = normalize(queue.detach().to(dtype))
        logits_s = normalize(z_student.to(dtype)) @ keys.T / ts
        with torch.no_grad():
            target = F.softmax(normalize(z_teacher.detach().to(dtype)) @ keys.T / tt, dim=1)
        return -(target * F.log_softmax(logits_s, dim=1)).sum(dim=1).mean()
