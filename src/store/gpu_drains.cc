#include "store/gpu_drains.h"

#include "store/sqlite_conn.h"

namespace berth::store {

namespace {

std::string Where(const std::string& node, int gpu) {
  return gpu < 0 ? "node " + node : "GPU " + std::to_string(gpu) + " on " + node;
}

}  // namespace

Status PutDrain(Store& store, const DrainRecord& d, TimeMs now) {
  const std::string op = "drain " + Where(d.node, d.gpu);
  return store.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& events) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("INSERT OR REPLACE INTO gpu_drains (node, gpu, reason, source,"
                                   " actor, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                   op));
        Stmt s(raw);
        s.Bind(1, std::string_view(d.node));
        s.Bind(2, int64_t{d.gpu});
        s.Bind(3, std::string_view(d.reason));
        s.Bind(4, std::string_view(d.source));
        s.Bind(5, std::string_view(d.actor));
        s.Bind(6, d.time ? d.time : now);
        RETURN_IF_ERROR(s.Run(op));
        nlohmann::json data = {{"node", d.node}, {"reason", d.reason}, {"source", d.source}};
        if (d.gpu >= 0) data["gpu"] = d.gpu;
        if (!d.actor.empty()) data["actor"] = d.actor;
        events.push_back({"GpuDrained", 0, Where(d.node, d.gpu) + " drained: " + d.reason, data});
        return Status::Ok();
      },
      now);
}

Status DeleteDrain(Store& store, const std::string& node, int gpu, const std::string& actor,
                   TimeMs now) {
  const std::string op = "undrain " + Where(node, gpu);
  return store.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& events) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("DELETE FROM gpu_drains WHERE node = ?1 AND gpu = ?2", op));
        Stmt s(raw);
        s.Bind(1, std::string_view(node));
        s.Bind(2, int64_t{gpu});
        RETURN_IF_ERROR(s.Run(op));
        if (sqlite3_changes(c.db()) == 0) return NotFound(Where(node, gpu) + " is not drained");
        nlohmann::json data = {{"node", node}};
        if (gpu >= 0) data["gpu"] = gpu;
        if (!actor.empty()) data["actor"] = actor;
        events.push_back({"GpuUndrained", 0, Where(node, gpu) + " undrained", data});
        return Status::Ok();
      },
      now);
}

Result<std::vector<DrainRecord>> ListDrains(Store& store) {
  // Read once at start (GpuDrains::Load) on the writer connection: the
  // table is tiny and this saves a second connection.
  std::vector<DrainRecord> out;
  const std::string op = "list drained GPUs";
  Status st = store.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>&) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("SELECT node, gpu, reason, source, actor, time FROM gpu_drains"
                                   " ORDER BY node, gpu",
                                   op));
        Stmt s(raw);
        for (;;) {
          ASSIGN_OR_RETURN(bool row, s.Step(op));
          if (!row) break;
          DrainRecord d;
          d.node = s.Text(0);
          d.gpu = static_cast<int>(s.Int(1));
          d.reason = s.Text(2);
          d.source = s.Text(3);
          d.actor = s.Text(4);
          d.time = s.Int(5);
          out.push_back(std::move(d));
        }
        return Status::Ok();
      },
      0);
  if (!st.ok()) return st;
  return out;
}

}  // namespace berth::store
