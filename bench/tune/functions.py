"""The benchmark functions, the same as bench/tune/functions.cc (all minimised)."""
import math

OFFSETS = {"relu": 1.0, "gelu": 0.0, "tanh": 0.5, "sigmoid": 2.0}
H6_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
H6_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
H6_ALPHA = [1.0, 1.2, 3.0, 3.2]


def branin(p):
    x, y = p["x0"], p["x1"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def hartmann6(p):
    x = [p["x%d" % i] for i in range(6)]
    s = 0.0
    for i in range(4):
        inner = sum(H6_A[i][j] * (x[j] - H6_P[i][j] * 1e-4) ** 2 for j in range(6))
        s -= H6_ALPHA[i] * math.exp(-inner)
    return s


def rosenbrock(p):
    x = [p["x%d" % i] for i in range(10)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(9))


def ackley(p):
    x = [p["x%d" % i] for i in range(5)]
    n = len(x)
    s1 = sum(v * v for v in x) / n
    s2 = sum(math.cos(2 * math.pi * v) for v in x) / n
    return -20 * math.exp(-0.2 * math.sqrt(s1)) - math.exp(s2) + 20 + math.e


def styblinski_tang(p):
    x = [p["x%d" % i] for i in range(8)]
    return sum(v ** 4 - 16 * v * v + 5 * v for v in x) / 2


def mixed(p):
    x, y, n = p["x"], p["y"], p["units"]
    return (OFFSETS[p["act"]] + ((n - 13) / 5.0) ** 2 + (x - 1.5) ** 2 + 0.5 * (y + 2) ** 2
            + 0.3 * math.sin(3 * x))


def lr_wd(p):
    a = math.log10(p["lr"]) + 2.5
    b = math.log10(p["wd"]) + 4.0
    return 0.1 + 0.05 * a * a + 0.02 * b * b + 0.02 * a * b + 0.3 * max(0.0, a - 1.0) ** 2


def box(n, lo, hi):
    return [("x%d" % i, "double", lo, hi, False) for i in range(n)]


# name -> (function, params); a param is (name, kind, low, high, log) or (name, "cat", choices)
FUNCTIONS = {
    "branin": (branin, [("x0", "double", -5.0, 10.0, False), ("x1", "double", 0.0, 15.0, False)]),
    "hartmann6": (hartmann6, box(6, 0.0, 1.0)),
    "rosenbrock10": (rosenbrock, box(10, -5.0, 10.0)),
    "ackley5": (ackley, box(5, -10.0, 30.0)),
    "styblinski8": (styblinski_tang, box(8, -5.0, 5.0)),
    "mixed": (mixed, [("act", "cat", list(OFFSETS)), ("units", "int", 1, 32, False),
                      ("x", "double", -5.0, 5.0, False), ("y", "double", -5.0, 5.0, False)]),
    "lr_wd": (lr_wd, [("lr", "double", 1e-5, 1.0, True), ("wd", "double", 1e-6, 0.1, True)]),
}
