// berth token create / list / revoke: API tokens for the SDK, the
// dashboard and remote use (docs/security.md). A token is printed once,
// when it is made; berthd keeps only its hash.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/json_fields.h"
#include "cli/table.h"
#include "model/spec_reader.h"

namespace berth::cli {
namespace {

using nlohmann::json;

struct CreateFlags {
  std::string user;
  std::string expires;
  std::string description;
  std::string output = "text";
};

struct ListFlags {
  std::string user;
  bool jobs = false;
  std::string output = "table";
};

int RunCreate(const CreateFlags& f, const std::string& server) {
  json body = json::object();
  if (!f.user.empty()) body["user"] = f.user;
  if (!f.expires.empty()) {
    auto d = model::ParseDuration(f.expires);
    if (!d.ok() || *d <= 0)
      return Report(InvalidArgument(
          "--expires: must be a duration such as 30d, 12h or 90m, got \"" + f.expires + "\""));
    body["expires"] = f.expires;
  }
  if (!f.description.empty()) body["description"] = f.description;
  ApiClient api(server);
  auto r = api.Post("/api/v1/tokens", body.dump());
  if (!r.ok()) return Report(r.status());
  if (f.output == "json") {
    std::cout << r->dump(2) << "\n";
    return 0;
  }
  std::cout << Str(*r, "token") << "\n";
  std::string expires = Str(*r, "expires");
  std::cerr << "token " << Str(*r, "id") << " for " << Str(*r, "user")
            << (expires.empty() ? ", until revoked" : ", expires " + expires)
            << ". It is shown only now: keep it secret (set BERTH_TOKEN, or give it to the "
               "SDK); `berth token revoke "
            << Str(*r, "id") << "` ends it.\n";
  return 0;
}

std::string Or(const std::string& s, const char* dflt) { return s.empty() ? dflt : s; }

int RunList(const ListFlags& f, const std::string& server) {
  std::string q = "/api/v1/tokens";
  std::string sep = "?";
  if (!f.user.empty()) {
    q += sep + "user=" + f.user;
    sep = "&";
  }
  if (f.jobs) q += sep + "jobs=true";
  ApiClient api(server);
  auto r = api.Get(q);
  if (!r.ok()) return Report(r.status());
  if (f.output == "json") {
    std::cout << r->dump(2) << "\n";
    return 0;
  }
  Table t({"ID", "USER", "CREATED", "EXPIRES", "LAST USED", "STATUS", "DESCRIPTION"});
  for (const auto& tok : (*r)["items"]) {
    std::string status = Str(tok, "revoked").empty() ? "active" : "revoked";
    if (!Str(tok, "job").empty()) status += " (job " + Str(tok, "job") + ")";
    t.Add({Str(tok, "id"), Str(tok, "user"), Str(tok, "created"), Or(Str(tok, "expires"), "never"),
           Or(Str(tok, "lastUsed"), "never"), status, Str(tok, "description")});
  }
  t.Print(std::cout);
  return 0;
}

bool IsTokenId(const std::string& id) {
  if (id.size() != 16) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

int RunRevoke(const std::string& id, const std::string& server) {
  if (!IsTokenId(id))
    return Report(InvalidArgument("ID: a token id is 16 hex digits (see berth token list), got \"" +
                                  id + "\""));
  ApiClient api(server);
  auto r = api.Delete("/api/v1/tokens/" + id);
  if (!r.ok()) return Report(r.status());
  if (r->value("alreadyRevoked", false))
    std::cout << "token " << id << " was already revoked\n";
  else
    std::cout << "token " << id << " revoked\n";
  return 0;
}

}  // namespace

std::vector<Command> AddTokenCommands(CLI::App& app) {
  std::vector<Command> out;
  auto server = [&app] { return ServerUrlOrExit(app); };
  auto* token = app.add_subcommand("token", "API tokens for the SDK, the dashboard and remote use");
  token->require_subcommand(1);

  auto cf = std::make_shared<CreateFlags>();
  auto* create = token->add_subcommand("create", "make a token and print it (shown only once)");
  create->add_option("--user", cf->user, "for another user (admins only; default: you)");
  create->add_option("--expires", cf->expires,
                     "lifetime, e.g. 30d or 12h (default: until revoked)");
  create->add_option("--description", cf->description, "what it is for, shown by token list");
  create->add_option("-o,--output", cf->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  out.push_back({create, [cf, server] { return RunCreate(*cf, server()); }});

  auto lf = std::make_shared<ListFlags>();
  auto* list = token->add_subcommand("list", "list your tokens (an admin: everyone's)");
  list->add_option("--user", lf->user, "only this user's (admins only for others)");
  list->add_flag("--jobs", lf->jobs, "include the tokens of jobs' tasks");
  list->add_option("-o,--output", lf->output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  out.push_back({list, [lf, server] { return RunList(*lf, server()); }});

  auto id = std::make_shared<std::string>();
  auto* revoke =
      token->add_subcommand("revoke", "revoke a token (and the browser sessions it opened)");
  revoke->add_option("ID", *id, "the token's id (berth token list)")->required();
  out.push_back({revoke, [id, server] { return RunRevoke(*id, server()); }});
  return out;
}

}  // namespace berth::cli
