// Small dense linear algebra for the model-based algorithms (row-major
// square matrices as vector<double>).
#pragma once

#include <vector>

namespace berth::tune {

using Vec = std::vector<double>;
using Mat = std::vector<double>;  // n*n, row-major

// Lower-triangular L with A = L L^T; false when A is not positive definite.
bool Cholesky(const Mat& a, int n, Mat* l);
// Solves L y = b (forward) and L^T x = y (backward) in place.
void ForwardSolve(const Mat& l, int n, Vec* b);
void BackwardSolve(const Mat& l, int n, Vec* b);
// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations:
// A = V diag(w) V^T, eigenvectors as V's columns.
void SymmetricEigen(const Mat& a, int n, Vec* w, Mat* v);

}  // namespace berth::tune
