import pytest
import torch

from captum_multimodal.nn import Hadamard, LatticeSoftmax, LowRankBilinearAttention, MLBFusion


def test_attention_matches_equations_4_and_5_written_per_location():
    torch.manual_seed(0)
    attention = LowRankBilinearAttention(
        question_dim=5, feature_channels=3, hidden_dim=7, glimpses=2
    )
    q, features = torch.randn(2, 5), torch.randn(2, 3, 4, 4)
    attended, alpha = attention(q, features)

    Uq, bq = attention.question_projection[0].weight, attention.question_projection[0].bias
    VF, bF = (
        attention.feature_projection[0].weight[:, :, 0, 0],
        attention.feature_projection[0].bias,
    )
    P, bP = attention.glimpse_logits.weight[:, :, 0, 0], attention.glimpse_logits.bias
    for b in range(2):
        lattice = features[b].flatten(1).T  # (S*S, M)
        logits = torch.stack(
            [P @ (torch.tanh(Uq @ q[b] + bq) * torch.tanh(VF @ f + bF)) + bP for f in lattice]
        )  # (S*S, G)
        expected_alpha = torch.softmax(logits.T, dim=1)  # softmax over the lattice, per glimpse
        torch.testing.assert_close(alpha[b].flatten(1), expected_alpha)
        expected_v = torch.cat(
            [sum(a * f for a, f in zip(row, lattice, strict=True)) for row in expected_alpha]
        )
        torch.testing.assert_close(attended[b], expected_v)


def test_fusion_is_the_hadamard_product_of_equation_6():
    torch.manual_seed(1)
    fusion = MLBFusion(question_dim=4, visual_dim=6, joint_dim=5)
    q, v = torch.randn(3, 4), torch.randn(3, 6)
    Wq, bq = fusion.textual[0].weight, fusion.textual[0].bias
    Vv, bv = fusion.visual[0].weight, fusion.visual[0].bias
    expected = torch.tanh(q @ Wq.T + bq) * torch.tanh(v @ Vv.T + bv)
    torch.testing.assert_close(fusion(q, v), expected)


def test_named_submodules_output_Q_V_and_F():
    fusion = MLBFusion(4, 6, 5)
    seen = {}
    handles = [
        getattr(fusion, name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, o)
        )
        for name in ("textual", "visual", "hadamard")
    ]
    out = fusion(torch.randn(2, 4), torch.randn(2, 6))
    for h in handles:
        h.remove()
    torch.testing.assert_close(seen["hadamard"], seen["textual"] * seen["visual"])
    torch.testing.assert_close(out, seen["hadamard"])


def test_lattice_softmax_and_hadamard_errors():
    alpha = LatticeSoftmax()(torch.randn(2, 3, 5, 5))
    torch.testing.assert_close(alpha.sum(dim=(2, 3)), torch.ones(2, 3))
    with pytest.raises(ValueError, match="same shape"):
        Hadamard()(torch.ones(2, 3), torch.ones(2, 4))
