"""The sources the deep-linear claims cite, and the integrator tolerance they share."""

from __future__ import annotations

__all__ = []

SAXE = "Saxe, McClelland & Ganguli 2014, Exact solutions to the nonlinear dynamics of learning in deep linear networks"
ARORA = "Arora, Cohen & Hazan 2018, On the Optimization of Deep Networks"
KREISLER = "Kreisler, Nacson, Soudry & Carmon 2023, Gradient Descent Monotonically Decreases the Sharpness of GFS"
COHEN = "Cohen, Kaur, Li, Kolter & Talwalkar 2021, Gradient Descent on Neural Networks Typically Occurs at the EoS"
AGARWALA = "Agarwala & Dauphin 2023, SAM operates far from home"
LEVI = "Levi, Beck & Bar-Sinai 2024, Grokking in Linear Estimators"
DOHMATOB = "Dohmatob, Feng & Kempe 2024, Model Collapse Demystified: The Case of Regression"

RTOL = 1e-10
