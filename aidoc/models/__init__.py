"""The diagnostic models: architectures, safe artifact loading, batched inference and training."""

from aidoc.models.artifacts import ARCHITECTURES, load_model, save_model
from aidoc.models.ecg import ECG_KIND, ECG_LABELS, EcgCNN, preprocess_ecg, simulate_ecg, simulate_ecg_dataset
from aidoc.models.inference import DiagnosticModel, DiagnosticNetwork, Prediction, select_device
from aidoc.models.panel import PANEL_KIND, PANEL_LABELS, PanelMLP, fit_logistic_baseline
from aidoc.models.training import train_ecg_model, train_panel_model

__all__ = [
    "ARCHITECTURES",
    "ECG_KIND",
    "ECG_LABELS",
    "PANEL_KIND",
    "PANEL_LABELS",
    "DiagnosticModel",
    "DiagnosticNetwork",
    "EcgCNN",
    "PanelMLP",
    "Prediction",
    "fit_logistic_baseline",
    "load_model",
    "preprocess_ecg",
    "save_model",
    "select_device",
    "simulate_ecg",
    "simulate_ecg_dataset",
    "train_ecg_model",
    "train_panel_model",
]
