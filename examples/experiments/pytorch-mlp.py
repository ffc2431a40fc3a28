"""A tiny PyTorch model tuned from Python with the SDK: an MLP on
scikit-learn's digits, reporting validation accuracy per epoch with
berth.report (the Push collector), so the curves are in the store.

    PYTHONPATH=python /usr/bin/python3 examples/experiments/pytorch-mlp.py

Needs Debian's python3-torch and python3-sklearn (nothing is downloaded).
"""
import os
import sys

from berth import Experiment, Experiments

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.join(HERE, "..", "..", "python")

TRIAL = r"""
import sys, torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import berth
lr, hidden, epochs = float(sys.argv[1]), int(sys.argv[2]), 8
X, y = load_digits(return_X_y=True)
Xtr, Xva, ytr, yva = train_test_split(X / 16.0, y, test_size=0.3, random_state=0)
Xtr, Xva = torch.tensor(Xtr, dtype=torch.float32), torch.tensor(Xva, dtype=torch.float32)
ytr, yva = torch.tensor(ytr), torch.tensor(yva)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
opt = torch.optim.Adam(model.parameters(), lr=lr)
for epoch in range(epochs):
    for i in range(0, len(Xtr), 64):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(Xtr[i:i + 64]), ytr[i:i + 64]).backward()
        opt.step()
    acc = (model(Xva).argmax(1) == yva).float().mean().item()
    berth.report(step=epoch, accuracy=acc)
"""

if __name__ == "__main__":
    exp = Experiment("digits-mlp", objective="accuracy", goal="maximize", algorithm="random",
                     parallel=2, max_trials=8, collector="Push")
    exp.double("lr", 1e-4, 1e-1, distribution="logUniform")
    exp.int("hidden", 8, 128)
    exp.trial(command=["/usr/bin/python3", "-c", TRIAL, "${trialParameters.lr}",
                       "${trialParameters.hidden}"],
              env={"PYTHONPATH": os.path.abspath(SDK)})
    api = Experiments()
    api.create(exp)
    done = api.wait("digits-mlp", timeout=1800)
    print(done["state"], done["message"])
    print("best:", done["currentOptimalTrial"])
    sys.exit(0 if done["state"] == "Succeeded" else 1)
