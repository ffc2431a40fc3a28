#include "tune/cmaes.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <numeric>

#include "tune/linalg.h"
#include "tune/sample.h"
#include "tune/util.h"

namespace berth::tune {
namespace {

// The strategy's state and constants for one run (a restart begins a new one).
struct Strategy {
  int n, lambda, mu;
  Vec w;
  double mueff, cs, ds, cc, c1, cmu, chi;
  Vec m, ps, pc;
  Mat C, B;  // B: eigenvectors times sqrt(eigenvalues), C = B B^T
  Mat invsqrt;
  double sigma;
  int gen = 0;

  Strategy(int dims, int pop, double sigma0) : n(dims), lambda(pop), sigma(sigma0) {
    // Weights for all lambda samples: positive for the best mu, negative
    // ("active" CMA) for the rest, as in the tutorial's default.
    mu = lambda / 2;
    Vec raw(lambda);
    for (int i = 0; i < lambda; ++i) raw[i] = std::log((lambda + 1) / 2.0) - std::log(i + 1.0);
    double pos = 0, pos2 = 0, neg = 0, neg2 = 0;
    for (int i = 0; i < lambda; ++i) {
      if (raw[i] > 0) {
        pos += raw[i];
        pos2 += raw[i] * raw[i];
      } else {
        neg -= raw[i];
        neg2 += raw[i] * raw[i];
      }
    }
    mueff = pos * pos / pos2;
    double mueff_neg = neg2 > 0 ? neg * neg / neg2 : 0;
    const double alpha_cov = 2;
    cs = (mueff + 2) / (n + mueff + 5);
    ds = 1 + 2 * std::max(0.0, std::sqrt((mueff - 1) / (n + 1)) - 1) + cs;
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n);
    c1 = alpha_cov / ((n + 1.3) * (n + 1.3) + mueff);
    cmu = std::min(
        1 - c1, alpha_cov * (mueff - 2 + 1 / mueff) / ((n + 2) * (n + 2) + alpha_cov * mueff / 2));
    double a_mu = 1 + c1 / cmu;
    double a_mueff = 1 + 2 * mueff_neg / (mueff + 2);
    double a_posdef = (1 - c1 - cmu) / (n * cmu);
    double neg_scale = std::min({a_mu, a_mueff, a_posdef});
    w.resize(lambda);
    for (int i = 0; i < lambda; ++i)
      w[i] = raw[i] > 0 ? raw[i] / pos : (neg > 0 ? neg_scale * raw[i] / neg : 0);
    chi = std::sqrt(n) * (1 - 1.0 / (4 * n) + 1.0 / (21.0 * n * n));
    m.assign(n, 0.5);
    ps.assign(n, 0);
    pc.assign(n, 0);
    C.assign(n * n, 0);
    for (int i = 0; i < n; ++i) C[i * n + i] = 1;
    Decompose();
  }

  void Decompose() {
    Vec ev;
    Mat V;
    SymmetricEigen(C, n, &ev, &V);
    B.assign(n * n, 0);
    invsqrt.assign(n * n, 0);
    for (int k = 0; k < n; ++k) {
      double e = std::max(ev[k], 1e-20);
      double s = std::sqrt(e);
      for (int i = 0; i < n; ++i) B[i * n + k] = V[i * n + k] * s;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) invsqrt[i * n + j] += V[i * n + k] * V[j * n + k] / s;
    }
  }

  Vec Sample(Rng& rng) const {
    std::normal_distribution<double> nd(0, 1);
    Vec x(n);
    for (int attempt = 0; attempt < 100; ++attempt) {
      Vec z(n);
      for (double& v : z) v = nd(rng);
      bool inside = true;
      for (int i = 0; i < n; ++i) {
        double y = 0;
        for (int k = 0; k < n; ++k) y += B[i * n + k] * z[k];
        x[i] = m[i] + sigma * y;
        if (x[i] < 0 || x[i] > 1) inside = false;
      }
      if (inside) return x;
    }
    for (double& v : x) v = std::clamp(v, 0.0, 1.0);
    return x;
  }

  // One generation: `xs` sorted best first (at least lambda of them).
  void Tell(const std::vector<Vec>& xs) {
    std::vector<Vec> y(lambda, Vec(n));
    Vec yw(n, 0);
    for (int i = 0; i < lambda; ++i)
      for (int j = 0; j < n; ++j) {
        y[i][j] = (xs[i][j] - m[j]) / sigma;
        if (i < mu) yw[j] += w[i] * y[i][j];
      }
    for (int j = 0; j < n; ++j) m[j] += sigma * yw[j];
    auto whiten = [&](const Vec& v) {
      Vec out(n, 0);
      for (int i = 0; i < n; ++i)
        for (int k = 0; k < n; ++k) out[i] += invsqrt[i * n + k] * v[k];
      return out;
    };
    Vec cy = whiten(yw);
    double a = std::sqrt(cs * (2 - cs) * mueff);
    double psn = 0;
    for (int i = 0; i < n; ++i) {
      ps[i] = (1 - cs) * ps[i] + a * cy[i];
      psn += ps[i] * ps[i];
    }
    psn = std::sqrt(psn);
    ++gen;
    bool hs = psn / std::sqrt(1 - std::pow(1 - cs, 2.0 * gen)) < (1.4 + 2.0 / (n + 1)) * chi;
    double b = std::sqrt(cc * (2 - cc) * mueff);
    for (int i = 0; i < n; ++i) pc[i] = (1 - cc) * pc[i] + (hs ? b * yw[i] : 0);
    // Negative weights are rescaled by n / |C^-1/2 y|^2 so C stays positive definite.
    Vec wc(lambda);
    double wsum = 0;
    for (int k = 0; k < lambda; ++k) {
      wc[k] = w[k];
      if (w[k] < 0) {
        Vec z = whiten(y[k]);
        double nz = 0;
        for (double v : z) nz += v * v;
        wc[k] = w[k] * n / std::max(nz, 1e-20);
      }
      wsum += w[k];
    }
    double keep = 1 + (hs ? 0 : c1 * cc * (2 - cc)) - c1 - cmu * wsum;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double rank_mu = 0;
        for (int k = 0; k < lambda; ++k) rank_mu += wc[k] * y[k][i] * y[k][j];
        C[i * n + j] = keep * C[i * n + j] + c1 * pc[i] * pc[j] + cmu * rank_mu;
      }
    sigma *= std::exp((cs / ds) * (psn / chi - 1));
    sigma = std::min(sigma, 1.0);
    Decompose();
  }

  // IPOP's restart test: the steps have become too small to matter.
  bool Collapsed() const {
    double maxstd = 0;
    for (int i = 0; i < n; ++i) maxstd = std::max(maxstd, sigma * std::sqrt(C[i * n + i]));
    return maxstd < 1e-6;
  }
};

int DefaultPop(int n) { return 4 + static_cast<int>(std::floor(3 * std::log(n))); }

}  // namespace

Result<std::unique_ptr<Suggester>> CmaEs::Make(const Settings& settings, const SearchSpace& space) {
  SettingsReader r(settings, "cmaes");
  ASSIGN_OR_RETURN(double sigma, r.Double("sigma", 1.0 / 6, 0, 1, /*open_lo=*/true));
  ASSIGN_OR_RETURN(int64_t pop, r.Int("popsize", 0, 0, 100000));
  ASSIGN_OR_RETURN(std::string restart, r.Choice("restart_strategy", "none", {"none", "ipop"}));
  RETURN_IF_ERROR(r.Finish());
  if (pop != 0 && pop < 2)
    return InvalidArgument("algorithm.algorithmSettings.popsize: must be at least 2 (got " +
                           std::to_string(pop) + ")");
  return std::unique_ptr<Suggester>(
      new CmaEs(space, sigma, static_cast<int>(pop), restart == "ipop"));
}

Result<Suggestions> CmaEs::Suggest(const History& history, int count, uint64_t seed) {
  Rng rng = CallRng(seed, history, 0xc3a);
  std::vector<size_t> num;  // numeric parameters, the strategy's coordinates
  for (size_t j = 0; j < space_.params.size(); ++j)
    if (IsNumeric(space_.params[j])) num.push_back(j);
  int n = static_cast<int>(num.size());
  Suggestions out;
  if (n == 0) {  // nothing to adapt: random lists
    for (int i = 0; i < count; ++i) {
      Suggestion s;
      for (const Param& p : space_.params) s.params[p.name] = SampleValue(p, rng);
      out.trials.push_back(std::move(s));
    }
    return out;
  }

  // Finished trials by generation, in id order.
  std::map<int64_t, std::vector<std::pair<double, Vec>>> byGen;
  for (const Done& d : Finished(history)) {
    const Trial& t = history.trials[d.index];
    int64_t g = LabelInt(t, "cmaes.generation", -1);
    if (g < 0) continue;
    Vec x(n);
    bool ok = true;
    for (int k = 0; k < n; ++k) {
      auto it = t.params.find(space_.params[num[k]].name);
      double u = it == t.params.end() ? -1 : TextToUnit(space_.params[num[k]], it->second);
      if (u < 0) ok = false;
      x[k] = u;
    }
    if (ok) byGen[g].push_back({d.loss, std::move(x)});
  }
  int pop = popsize_ > 0 ? popsize_ : DefaultPop(std::max(n, 1));
  Strategy es(n, pop, sigma0_);
  int64_t g = 0;
  for (;; ++g) {
    auto it = byGen.find(g);
    if (it == byGen.end() || static_cast<int>(it->second.size()) < es.lambda) break;
    auto& v = it->second;
    std::vector<std::pair<double, Vec>> first(v.begin(), v.begin() + es.lambda);
    std::stable_sort(first.begin(), first.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Vec> xs;
    for (auto& [l, x] : first) xs.push_back(x);
    es.Tell(xs);
    bool bad = !std::isfinite(es.sigma) || es.sigma <= 0;
    if (bad || (ipop_ && es.Collapsed())) {
      es = Strategy(n, bad ? es.lambda : es.lambda * 2, sigma0_);
    }
  }
  for (int i = 0; i < count; ++i) {
    Vec x = es.Sample(rng);
    Suggestion s;
    for (size_t j = 0; j < space_.params.size(); ++j)
      if (!IsNumeric(space_.params[j]))
        s.params[space_.params[j].name] = SampleValue(space_.params[j], rng);
    for (int k = 0; k < n; ++k) {
      const Param& p = space_.params[num[k]];
      s.params[p.name] = FormatValue(p, FromUnit(p, x[k]));
    }
    s.labels["cmaes.generation"] = std::to_string(g);
    out.trials.push_back(std::move(s));
  }
  return out;
}

}  // namespace berth::tune
