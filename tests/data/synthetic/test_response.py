import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from sklearn.metrics import roc_auc_score

from smart.data.synthetic.response import n_positive, render_tumour, sample_records, write_response_cohort


def test_label_ratio_is_the_papers():
    records = [r for r, _ in sample_records(0, 200)]
    assert sum(r.label for r in records) == 82 == n_positive(200)
    assert n_positive(60) == 25


def test_signal_is_weak_but_present():
    records = [r for r, _ in sample_records(0, 600)]
    y = np.array([r.label for r in records])
    # NDB (label 0) tumours are larger: AUC of -diameter for DCB is above chance but far from perfect
    auc = roc_auc_score(y, -np.array([r.diameter_mm for r in records]))
    assert 0.55 < auc < 0.8, auc
    necrotic = np.array([r.necrosis > 0 for r in records])
    assert necrotic[y == 0].mean() > necrotic[y == 1].mean()


def test_render_and_write(tmp_path):
    (record, lesion), = sample_records(4, 2)[:1]
    a = render_tumour(record, lesion, seed=4, crop_size=32)
    assert np.array_equal(a, render_tumour(record, lesion, seed=4, crop_size=32)) and a.dtype == np.int16
    frame = write_response_cohort(tmp_path, seed=4, count=2, crop_size=32)
    csv = pd.read_csv(tmp_path / "cohort.csv")
    assert list(csv.columns[:4]) == ["sample_id", "patient_id", "image", "label"]
    assert csv.label.sum() == n_positive(2) and csv.patient_id.is_unique
    image = sitk.ReadImage(str(tmp_path / csv.image[0]))
    assert image.GetSize() == (32, 32, 32) and np.allclose(image.GetSpacing(), 2.0)
    assert len(frame) == 2
    with pytest.raises(ValueError, match="count"):
        sample_records(0, 1)
