// The loader refuses plugins someone but their owner or root could have
// written, and loads exactly the file it checked. Path cases are fixtures made
// at build time (tests/fixtures/CMakeLists.txt); owner and permission cases are
// made here, in a temporary directory, from a copy of the good fixture.
#include <dlfcn.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/plugin/plugin_loader.hpp"
#include "program_executor/plugin/trusted_file.hpp"
#include "support/plugin_paths.hpp"
#include "support/test_environment.hpp"

namespace fs = std::filesystem;
using program_executor::plugin::JobRegistry;
using program_executor::plugin::LoadStage;
using program_executor::plugin::PluginLoadError;
using program_executor::plugin::TrustPolicy;
using program_executor::plugin::UntrustedFileError;
using program_executor::plugin::load_directory;
using program_executor::plugin::load_plugin;
using program_executor::plugin::open_trusted_file;
using program_executor::test::fixture;

namespace {

constexpr uid_t nobody = 65534;


template <class Load>
std::optional<PluginLoadError> load_error(Load load) {
  try {
    load();
  } catch (const PluginLoadError& e) {
    return e;
  }
  FAIL("no PluginLoadError was thrown");
  return std::nullopt;
}

std::vector<std::string> job_names(const JobRegistry& registry) {
  std::vector<std::string> names;
  for (const auto& job : registry.jobs()) names.push_back(job.name);
  return names;
}

// How messages name the group of the files this test creates.
std::string own_group() {
  const group* entry = ::getgrgid(::getegid());
  return entry != nullptr ? std::string("group '") + entry->gr_name + "'"
                          : "group " + std::to_string(::getegid());
}

void set_mode(const fs::path& path, mode_t mode) { REQUIRE(::chmod(path.c_str(), mode) == 0); }

// <temp>/parent/plugins/good.so, all owned by this user: parent 0755,
// plugins 0755, good.so 0644. Each case breaks one thing.
struct PluginTree {
  program_executor::test::TemporaryDirectory temp;
  fs::path parent = temp.path() / "parent";
  fs::path plugins = parent / "plugins";
  fs::path plugin = plugins / "good.so";

  PluginTree() {
    fs::create_directories(plugins);
    fs::copy_file(fixture("good/good.so"), plugin);
    set_mode(parent, 0755);
    set_mode(plugins, 0755);
    set_mode(plugin, 0644);
  }
  ~PluginTree() {
    // Give everything back to us so the temporary directory can be removed.
    for (const fs::path& path : {parent, plugins, plugin}) {
      if (::geteuid() == 0) (void)::lchown(path.c_str(), 0, 0);
    }
  }
};

bool can_chown() {
  if (::geteuid() == 0) return true;
  WARN("SKIPPED: ownership cases need root (chown to uid 65534)");
  return false;
}

// The refusal of `tree.plugin` through load_plugin, and of the directory
// through load_directory: same stage, same reason.
void require_refused(const PluginTree& tree, const std::string& reason,
                     const fs::path& directory_error_file) {
  JobRegistry registry;
  const auto error = load_error([&] { load_plugin(tree.plugin, registry); });
  REQUIRE(error);
  CHECK(error->stage() == LoadStage::trust);
  CHECK(error->file() == tree.plugin);
  CHECK(std::string(error->what()) == tree.plugin.string() + ": trust: " + reason);
  CHECK(registry.size() == 0);

  const auto dir_error = load_error([&] { load_directory(tree.plugins); });
  REQUIRE(dir_error);
  CHECK(dir_error->stage() == LoadStage::trust);
  CHECK(dir_error->file() == directory_error_file);
  CHECK_THAT(dir_error->what(), Catch::EndsWith(": trust: " + reason));
}

}  // namespace

TEST_CASE("a plugin tree owned and written only by us loads", "[plugin][trust]") {
  PluginTree tree;  // below /tmp: a sticky, world-writable ancestor is fine
  const JobRegistry registry = load_directory(tree.plugins);
  CHECK(job_names(registry) == std::vector<std::string>{"fixture.count", "fixture.echo"});
  CHECK(registry.jobs()[0].plugin_file == tree.plugin.string());
}

TEST_CASE("a plugin file writable by others is refused", "[plugin][trust]") {
  PluginTree tree;
  SECTION("by every user") {
    set_mode(tree.plugin, 0666);
    require_refused(tree,
                    "the file is writable by every user (mode 0666), so others could change the "
                    "plugin",
                    tree.plugin);
  }
  SECTION("by its group") {
    set_mode(tree.plugin, 0664);
    require_refused(tree,
                    "the file is writable by " + own_group() +
                        " (mode 0664), so others could change the plugin",
                    tree.plugin);
  }
}

TEST_CASE("a plugin directory writable by others is refused, sticky or not", "[plugin][trust]") {
  PluginTree tree;
  const auto [mode, who] = GENERATE(table<mode_t, std::string>({
      {0777, "every user (mode 0777)"},
      {01777, "every user (mode 1777)"},
      {0775, own_group() + " (mode 0775)"},
  }));
  set_mode(tree.plugins, mode);
  require_refused(tree,
                  "the plugin directory '" + tree.plugins.string() + "' is writable by " + who +
                      ", so others could add or replace plugins in it",
                  tree.plugins);
}

TEST_CASE("a directory above the plugin directory writable by others is refused",
          "[plugin][trust]") {
  PluginTree tree;
  set_mode(tree.parent, 0777);
  require_refused(tree,
                  "directory '" + tree.parent.string() +
                      "' is writable by every user (mode 0777), so others could replace the "
                      "plugins below it",
                  tree.plugins);

  // With the sticky bit (as /tmp) others cannot rename or remove our entries.
  set_mode(tree.parent, 01777);
  JobRegistry registry;
  load_plugin(tree.plugin, registry);
  CHECK(registry.size() == 2);
}

TEST_CASE("a plugin, or a directory above it, owned by another user is refused",
          "[plugin][trust]") {
  if (!can_chown()) return;
  PluginTree tree;
  SECTION("the file") {
    REQUIRE(::chown(tree.plugin.c_str(), nobody, 0) == 0);
    require_refused(tree, "the file is owned by uid 65534 (nobody), not by root", tree.plugin);
  }
  SECTION("the plugin directory") {
    REQUIRE(::chown(tree.plugins.c_str(), nobody, 0) == 0);
    require_refused(tree,
                    "the plugin directory '" + tree.plugins.string() +
                        "' is owned by uid 65534 (nobody), not by root",
                    tree.plugins);
  }
  SECTION("a directory above it") {
    REQUIRE(::chown(tree.parent.c_str(), nobody, 0) == 0);
    require_refused(tree,
                    "directory '" + tree.parent.string() +
                        "' is owned by uid 65534 (nobody), not by root",
                    tree.plugins);
  }
}

TEST_CASE("the daemon's own user is trusted besides root", "[plugin][trust]") {
  if (!can_chown()) return;
  PluginTree tree;
  REQUIRE(::chown(tree.plugin.c_str(), nobody, 0) == 0);
  TrustPolicy policy;
  policy.trusted_owners = {0, nobody};
  CHECK(open_trusted_file(tree.plugin, policy).fd() >= 0);
  policy.trusted_owners = {0};
  CHECK_THROWS_WITH(open_trusted_file(tree.plugin, policy),
                    "the file is owned by uid 65534 (nobody), not by root");
  policy.trusted_owners = {0, 1234};
  CHECK_THROWS_WITH(open_trusted_file(tree.plugin, policy),
                    "the file is owned by uid 65534 (nobody), not by root or the daemon's "
                    "user, uid 1234");
}

TEST_CASE("a symbolic link out of the plugin directory is refused", "[plugin][trust]") {
  const fs::path link = fixture("symlink_out/escape.so");
  REQUIRE(fs::is_symlink(link));
  const std::string reason = "is a symbolic link to '" +
                             fs::canonical(fixture("good/good.so")).string() +
                             "', outside the plugin directory '" +
                             fs::canonical(fixture("symlink_out")).string() + "'";
  JobRegistry registry;
  auto error = load_error([&] { load_plugin(link, registry); });
  REQUIRE(error);
  CHECK(error->stage() == LoadStage::trust);
  CHECK(std::string(error->what()) == link.string() + ": trust: " + reason);

  error = load_error([&] { load_directory(fixture("symlink_out")); });
  REQUIRE(error);
  CHECK(error->stage() == LoadStage::trust);
  CHECK(error->file() == link);
}

TEST_CASE("a symbolic link inside the plugin directory's tree is followed", "[plugin][trust]") {
  const fs::path link = fixture("symlink_inside/current.so");
  REQUIRE(fs::is_symlink(link));
  const JobRegistry registry = load_directory(fixture("symlink_inside"));
  CHECK(job_names(registry) == std::vector<std::string>{"fixture.count", "fixture.echo"});
  CHECK(registry.jobs()[0].plugin_file == link.string());
}

TEST_CASE("a dangling symbolic link cannot be opened", "[plugin][trust]") {
  const fs::path link = fixture("dangling/gone.so");
  const auto error = load_error([&] { load_directory(fixture("dangling")); });
  REQUIRE(error);
  CHECK(error->stage() == LoadStage::open);
  CHECK(error->file() == link);
  CHECK(std::string(error->what()) ==
        link.string() +
            ": open: is a symbolic link to 'missing.so', which cannot be opened: No such file "
            "or directory");
}

TEST_CASE("a .so that is not a regular file is refused, not skipped", "[plugin][trust]") {
  SECTION("a directory") {
    const fs::path file = fixture("directory_so/plugin.so");
    const auto error = load_error([&] { load_directory(fixture("directory_so")); });
    REQUIRE(error);
    CHECK(error->stage() == LoadStage::trust);
    CHECK(error->file() == file);
    CHECK(std::string(error->what()) ==
          file.string() + ": trust: is not a regular file but a directory");
  }
  SECTION("a FIFO, which must not block the loader in open()") {
    PluginTree tree;
    const fs::path fifo = tree.plugins / "pipe.so";
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    const auto error = load_error([&] { load_directory(tree.plugins); });
    REQUIRE(error);
    CHECK(error->stage() == LoadStage::trust);
    CHECK(error->file() == fifo);  // before good.so: name order
    CHECK(std::string(error->what()) ==
          fifo.string() + ": trust: is not a regular file but a FIFO");
  }
}

TEST_CASE("the file loaded is the file checked, even if the path is swapped afterwards",
          "[plugin][trust]") {
  PluginTree tree;
  auto checked = open_trusted_file(tree.plugin, TrustPolicy::for_this_process());
  CHECK(checked.resolved_path() == tree.plugin);

  // An attacker (or an unlucky deployment) renames another file over the path
  // between the checks and the load: no_entry.so exports nothing.
  const fs::path swapped = tree.plugins / "swap.tmp";
  fs::copy_file(fixture("no_entry/no_entry.so"), swapped);
  fs::rename(swapped, tree.plugin);

  void* by_path = ::dlopen(tree.plugin.c_str(), RTLD_NOW | RTLD_LOCAL);
  REQUIRE(by_path != nullptr);
  CHECK(::dlsym(by_path, "program_executor_register") == nullptr);  // the new file
  ::dlclose(by_path);

  void* by_descriptor = ::dlopen(checked.load_path().c_str(), RTLD_NOW | RTLD_LOCAL);
  REQUIRE(by_descriptor != nullptr);
  CHECK(::dlsym(by_descriptor, "program_executor_register") != nullptr);  // the checked one
  ::dlclose(by_descriptor);
}

TEST_CASE("a descriptor number reused after a load never returns the earlier library",
          "[plugin][trust]") {
  // Loading good.so twice fails at the duplicate stage; the second handle's
  // name (/proc/self/fd/N) stays attached to the library the first load keeps
  // mapped. A plugin opened next must get its own library, not good.so.
  JobRegistry registry;
  load_plugin(fixture("good/good.so"), registry);
  CHECK_THROWS_AS(load_plugin(fixture("good/good.so"), registry), PluginLoadError);

  JobRegistry other;
  load_plugin(fixture("duplicate/b_second.so"), other);
  CHECK(other.contains("fixture.unique_to_duplicate"));
}
