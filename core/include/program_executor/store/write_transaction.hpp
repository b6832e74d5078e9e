// A write transaction in the dialect's way (SQLite: BEGIN IMMEDIATE), rolled
// back unless committed.
#pragma once

namespace soci {
class session;
}  // namespace soci

namespace program_executor::store {

class Dialect;

/// Begins on construction; commit() commits. Destroyed uncommitted (an
/// exception, a lost connection) it rolls back, dropping the rollback's own
/// error: the one that got us there is the one that matters.
class WriteTransaction {
 public:
  WriteTransaction(soci::session& session, const Dialect& dialect);
  ~WriteTransaction();
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;

  void commit();

 private:
  soci::session& session_;
  const Dialect& dialect_;
  bool committed_ = false;
};

}  // namespace program_executor::store
