// Tasks run as their owner, and berthd never touches a path a user named
// (issue 11, points 3 and 4), on real processes: a root berthd, a real Unix
// account made for the test, the berth CLI run as that account.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <sstream>

#include <httplib.h>

#include "harness.h"
#include "pipeline_util.h"

namespace berth::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A throwaway Unix account in the group "users", removed at destruction.
class TempAccount {
 public:
  TempAccount() {
    std::random_device rd;
    std::ostringstream n;
    n << "berth-o-" << std::hex << (rd() & 0xffffff);
    name_ = n.str();
    if (std::system(("useradd -M -G users -s /bin/sh " + name_ + " >/dev/null 2>&1").c_str()) != 0)
      return;
    struct passwd* pw = ::getpwnam(name_.c_str());
    if (pw == nullptr) return;
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    home_ = pw->pw_dir;
    ok_ = true;
  }
  ~TempAccount() {
    if (ok_) std::system(("userdel " + name_ + " >/dev/null 2>&1").c_str());
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }
  const std::string& home() const { return home_; }

 private:
  std::string name_;
  std::string home_;
  bool ok_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

// The berth CLI against `d`, run as `who` (its own uid, gid and groups), in /.
CommandResult CliAs(const Daemon& d, const TempAccount& who, std::vector<std::string> args) {
  args.insert(args.begin(), {BinDir() + "/berth", "--server", d.socket_url()});
  std::string outf = fs::temp_directory_path() /
                     ("berth-as-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  std::string errf = outf + ".err";
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(outf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(errf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    if (::chdir("/") != 0 || ::initgroups(who.name().c_str(), who.gid()) != 0 ||
        ::setgid(who.gid()) != 0 || ::setuid(who.uid()) != 0)
      ::_exit(126);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(outf);
  r.err = ReadFile(errf);
  fs::remove(outf);
  fs::remove(errf);
  return r;
}

class OwnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "running tasks as another user needs a root berthd";
    if (std::system("command -v useradd >/dev/null 2>&1") != 0) GTEST_SKIP() << "no useradd";
    // Other accounts reach their directories through the data directory
    // (mkdtemp made it 0700).
    ::chmod(d_.data_dir().c_str(), 0711);
    ::chmod(files_.path().c_str(), 0711);
    ASSERT_TRUE(d_.Start()) << ReadFile(d_.data_dir() + "/berthd.log");
  }

  // A file of `files_` readable by everyone (pipeline documents for the CLI).
  std::string Doc(const std::string& name, const std::string& text) {
    std::string path = files_ / name;
    WriteFile(path, text);
    ::chmod(path.c_str(), 0644);
    return path;
  }

  Daemon d_;
  TempDir files_;
};

TEST_F(OwnerTest, AJobRunsAsItsOwnerWithTheOwnersGroupsAndEnvironmentInADirectoryItOwns) {
  TempAccount b;
  ASSERT_TRUE(b.ok()) << "useradd failed";
  CommandResult r = CliAs(d_, b,
                          {"run", "--", "/bin/sh", "-c",
                           "id -u; id -g; id -G; echo \"$USER $LOGNAME $HOME\"; "
                           "stat -c %u \"$BERTH_RUN_DIR\"; touch \"$BERTH_RUN_DIR/mine\""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return d_.State(id) == "Succeeded" || d_.State(id) == "Failed"; }));
  CommandResult logs = d_.Cli({"logs", id});
  ASSERT_EQ(d_.State(id), "Succeeded") << logs.out << d_.Job(id).dump();
  EXPECT_EQ(d_.Job(id)["user"], b.name());
  std::istringstream in(logs.out);
  std::string uid, gid, groups, names, owner;
  std::getline(in, uid);
  std::getline(in, gid);
  std::getline(in, groups);
  std::getline(in, names);
  std::getline(in, owner);
  EXPECT_EQ(uid, std::to_string(b.uid())) << logs.out;
  EXPECT_EQ(gid, std::to_string(b.gid())) << logs.out;
  struct group* users = ::getgrnam("users");
  ASSERT_NE(users, nullptr);
  EXPECT_NE((" " + groups + " ").find(" " + std::to_string(users->gr_gid) + " "), std::string::npos)
      << "the owner's supplementary groups: " << groups;
  EXPECT_EQ((" " + groups + " ").find(" 0 "), std::string::npos) << "root's group kept: " << groups;
  EXPECT_EQ(names, b.name() + " " + b.name() + " " + b.home()) << logs.out;
  EXPECT_EQ(owner, std::to_string(b.uid())) << "the task's directory is not its owner's";
  // On disk: the task's directory and what it made there are the owner's.
  bool found = false;
  for (const auto& e : fs::directory_iterator(d_.data_dir() + "/runs")) {
    if (e.path().filename().string().rfind("job-" + id + ".", 0) != 0) continue;
    struct stat st;
    ASSERT_EQ(::lstat((e.path() / "work").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, b.uid());
    ASSERT_EQ(::lstat((e.path() / "work" / "mine").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, b.uid());
    found = true;
  }
  EXPECT_TRUE(found);
}

// berthd knows its callers from the kernel or a token, so the only way to ask
// for work owned by a name without an account is a service account acting for
// it (a JupyterHub spawner for a hub-only user): refused at submit.
TEST_F(OwnerTest, AnOwnerWithoutAnAccountIsRefusedAtSubmitWithTheReason) {
  httplib::Client http(d_.url());
  auto role = http.Put("/api/v1/users/berth-svc-x1", httplib::Headers{d_.AuthHeader()},
                       R"({"role":"service"})", "application/json");
  ASSERT_TRUE(role);
  ASSERT_EQ(role->status, 200) << role->body;
  cli::ApiClient admin(d_.socket_url());
  auto tok = admin.Post("/api/v1/tokens", R"({"user":"berth-svc-x1","description":"spawner"})");
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  httplib::Headers as_nobody = {{"Authorization", "Bearer " + tok->value("token", "")},
                                {"X-Berth-Act-As", "berth-nosuch-x1"}};
  auto res =
      http.Post("/api/v1/jobs", as_nobody,
                R"({"apiVersion": "berth/v1", "kind": "Job", "spec": {"command": ["true"]}})",
                "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_NE(res->body.find("berth-nosuch-x1\\\": no such account on this machine"),
            std::string::npos)
      << res->body;
  res = http.Post(
      "/api/v1/pipelines/runs", as_nobody,
      R"({"spec": "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  steps:\n  - {name: a, command: [\"true\"]}\n"})",
      "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_NE(res->body.find("no such account on this machine"), std::string::npos) << res->body;
}

// The audit's cases: an input artifact path that climbs out of the step's
// directory, a parameter file named by an absolute path, and an artifact
// source that is not an artifact. Each is refused at submit with the field.
TEST_F(OwnerTest, PathsThatLeaveTheStepsDirectoryAreRefusedAtSubmit) {
  std::string victim = files_ / "victim";
  fs::create_directories(victim);
  WriteFile(victim + "/keep", "x");
  std::string secret = files_ / "secret";
  WriteFile(secret, "TOPSECRET\n");
  ::chmod(secret.c_str(), 0600);
  const std::string head =
      "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  steps:\n"
      "  - name: a\n    script: mkdir out; echo hi > out/f\n"
      "    outputs: {artifacts: [{name: data, path: out}]}\n";
  struct Case {
    std::string step;
    std::string field;
    std::string why;
  };
  std::vector<Case> cases = {
      {"  - name: b\n    dependencies: [a]\n    script: 'true'\n    inputs: {artifacts: "
       "[{name: d, from: \"{{steps.a.outputs.artifacts.data}}\", path: ../../../../../../" +
           victim.substr(1) + "}]}\n",
       "inputs.artifacts[0].path", "must not leave the step's working directory"},
      {"  - name: b\n    script: 'true'\n    outputs: {parameters: [{name: s, valueFrom: {path: " +
           secret + "}}]}\n",
       "valueFrom.path", "must be a path relative to the step's working directory"},
      {"  - name: b\n    script: 'true'\n    outputs: {artifacts: [{name: s, path: " + victim +
           "}]}\n",
       "outputs.artifacts[0].path", "must be a path relative"},
      {"  - name: b\n    dependencies: [a]\n    script: 'true'\n    inputs: {artifacts: "
       "[{name: d, from: \"" +
           victim + "/{{steps.a.outputs.artifacts.data}}\", path: in}]}\n",
       "inputs.artifacts[0].from", "must be {{steps.STEP.outputs.artifacts.NAME}}"},
  };
  for (const auto& c : cases) {
    std::string file = Doc("bad.yaml", head + c.step);
    CommandResult r = d_.Cli({"pipeline", "run", "-f", file});
    EXPECT_NE(r.exit_code, 0) << c.step;
    EXPECT_NE(r.err.find(c.field), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.why), std::string::npos) << r.err;
  }
  EXPECT_TRUE(fs::exists(victim + "/keep"));
  json runs = d_.Get("/api/v1/pipelines/runs");
  if (runs.is_object() && runs.contains("items")) runs = runs["items"];
  EXPECT_TRUE(runs.empty()) << runs.dump();
}

// What a step leaves in its own directory is read and copied by its
// supervisor as the step's owner, without following links: a parameter file
// that is a link to a root-only file, an artifact that is a link to a
// directory outside, and a link planted where a retry's input goes.
TEST_F(OwnerTest, LinksAStepPlantsAreNotFollowed) {
  std::string secret = files_ / "secret";
  WriteFile(secret, "TOPSECRET\n");
  ::chmod(secret.c_str(), 0600);
  std::string outside = files_ / "outside";
  fs::create_directories(outside);
  WriteFile(outside + "/keep", "kept\n");
  ::chmod(outside.c_str(), 0777);  // the owner's task may plant a link to it
  std::string yaml =
      "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: links}\nspec:\n  steps:\n"
      "  - name: param\n    script: ln -s " +
      secret +
      " p.txt\n"
      "    outputs: {parameters: [{name: v, valueFrom: {path: p.txt}}]}\n"
      "  - name: art\n    script: ln -s " +
      outside +
      " out\n"
      "    outputs: {artifacts: [{name: o, path: out}]}\n"
      "  - name: prod\n    script: mkdir d; echo data > d/f\n"
      "    outputs: {artifacts: [{name: d, path: d}]}\n"
      "  - name: plant\n    dependencies: [prod]\n"
      "    retryStrategy: {limit: 1, retryPolicy: Always}\n"
      "    inputs: {artifacts: [{name: d, from: \"{{steps.prod.outputs.artifacts.d}}\", path: "
      "sub/in}]}\n"
      "    script: rm -rf sub; ln -s " +
      outside + " sub; exit 1\n";
  std::string file = Doc("links.yaml", yaml);
  TempAccount b;
  ASSERT_TRUE(b.ok()) << "useradd failed";
  // Once as root (berthd's own user: only the link rules stand between the
  // step and the secret), once as another account.
  for (bool as_b : {false, true}) {
    CommandResult r = as_b ? CliAs(d_, b, {"pipeline", "run", "-f", file})
                           : d_.Cli({"pipeline", "run", "-f", file});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string id = Trim(r.out);
    json run = WaitRunEnd(d_, id);
    ASSERT_EQ(run.value("state", ""), "Failed") << run.dump(2);
    EXPECT_EQ(run.dump().find("TOPSECRET"), std::string::npos) << run.dump(2);
    json param = Node(run, "param");
    EXPECT_EQ(param["state"], "Failed") << param.dump();
    if (!as_b) EXPECT_NE(param.dump().find("symbolic link"), std::string::npos) << param.dump();
    json art = Node(run, "art");
    EXPECT_EQ(art["state"], "Failed") << art.dump();
    json plant = Node(run, "plant");
    EXPECT_EQ(plant["state"], "Failed") << plant.dump();
    EXPECT_NE(plant.dump().find("sub"), std::string::npos) << plant.dump();
    // Nothing was copied out of or into the directory outside.
    std::string arts = d_.data_dir() + "/artifacts/run-" + id + "/artifacts";
    EXPECT_FALSE(fs::exists(arts + "/art/o/keep")) << "an artifact was copied through a link";
    EXPECT_FALSE(fs::exists(outside + "/in")) << "an input was written through a link";
    EXPECT_TRUE(fs::exists(outside + "/keep"));
    if (as_b) {
      struct stat st;
      ASSERT_EQ(::lstat((d_.data_dir() + "/artifacts/run-" + id).c_str(), &st), 0);
      EXPECT_EQ(st.st_uid, b.uid()) << "the run's directory is not its owner's";
    }
  }
}

// A step of another account: inputs and outputs work, done as the owner.
TEST_F(OwnerTest, AnotherAccountsPipelinePassesArtifactsAndParameters) {
  TempAccount b;
  ASSERT_TRUE(b.ok()) << "useradd failed";
  std::string file =
      Doc("ok.yaml",
          "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: ok}\nspec:\n  steps:\n"
          "  - name: make\n    script: mkdir -p out/x; echo hello > out/x/f; id -u > who.txt\n"
          "    outputs:\n      parameters: [{name: who, valueFrom: {path: who.txt}}]\n"
          "      artifacts: [{name: o, path: out}]\n"
          "  - name: use\n    dependencies: [make]\n"
          "    inputs: {artifacts: [{name: o, from: \"{{steps.make.outputs.artifacts.o}}\", path: "
          "in/o}]}\n"
          "    script: cat in/o/x/f; stat -c %u in/o/x/f\n");
  CommandResult r = CliAs(d_, b, {"pipeline", "run", "-f", file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = Trim(r.out);
  json run = WaitRunEnd(d_, id);
  ASSERT_EQ(run.value("state", ""), "Succeeded") << run.dump(2);
  EXPECT_EQ(Node(run, "make")["outputs"]["parameters"]["who"], std::to_string(b.uid()))
      << run.dump(2);
  EXPECT_EQ(Node(run, "use")["outputs"]["result"], "hello\n" + std::to_string(b.uid()))
      << run.dump(2);
}

}  // namespace
}  // namespace berth::testing
