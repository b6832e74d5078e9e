#include "program_executor/store/write_transaction.hpp"

#include "program_executor/store/dialect.hpp"

namespace program_executor::store {

WriteTransaction::WriteTransaction(soci::session& session, const Dialect& dialect)
    : session_(session), dialect_(dialect) {
  dialect_.begin_write(session_);
}

WriteTransaction::~WriteTransaction() {
  if (committed_) return;
  try {
    dialect_.rollback(session_);
  } catch (...) {
    // Nothing more to do: the session is returned to the pool either way.
  }
}

void WriteTransaction::commit() {
  dialect_.commit(session_);
  committed_ = true;
}

}  // namespace program_executor::store
