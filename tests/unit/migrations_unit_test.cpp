// Migration files: names, order and duplicates; loading from a directory; the embedded copy
// matching migrations/ in the source tree. (Applying them needs Postgres: integration tier.)
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "infergate/infra/ids.h"
#include "infergate/infra/migrations.h"

namespace infergate::infra {
namespace {

namespace fs = std::filesystem;

std::vector<Migration> named(const std::vector<std::string>& names) {
  std::vector<Migration> out;
  for (const auto& n : names)
    out.push_back({n, "SELECT 1;"});
  return out;
}

template <class F>
std::string migration_error(F&& f) {
  try {
    f();
  } catch (const MigrationError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a MigrationError";
  return {};
}

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("infergate_migrations_" + random_hex(8))) {
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

TEST(MigrationsTest, ValidNamesAreAccepted) {
  EXPECT_NO_THROW(validate_migrations(named({"0001_a.sql", "0002_b_c.sql"})));
  EXPECT_NO_THROW(validate_migrations(named({"0001_tenants.sql", "0010_usage2.sql"})));
  EXPECT_NO_THROW(validate_migrations({}));
  // Gaps in the numbering are allowed.
  EXPECT_NO_THROW(validate_migrations(named({"0001_a.sql", "0005_b.sql", "9999_z.sql"})));
}

TEST(MigrationsTest, BadNamesAreRejected) {
  for (const char* bad : {"1_a.sql", "001_a.sql", "00001_a.sql", "0001-a.sql", "0001_A.sql",
                          "0001_a.SQL", "0001_a.sql.bak", "0001_a", "0001_.sql", "0001_a b.sql",
                          "0001_a-b.sql", "abcd_a.sql", "0001a.sql", ""}) {
    std::string msg = migration_error([&] { validate_migrations(named({bad})); });
    EXPECT_EQ(msg, std::string("migration file name '") + bad +
                       "' is not of the form NNNN_lowercase_name.sql");
  }
}

TEST(MigrationsTest, DuplicateNumbersAreRejected) {
  std::string msg = migration_error([] {
    validate_migrations(named({"0001_a.sql", "0002_b.sql", "0002_c.sql"}));
  });
  EXPECT_EQ(msg, "two migrations share the number 0002; give each file its own number");
}

TEST(MigrationsTest, UnsortedListIsRejected) {
  std::string msg = migration_error([] {
    validate_migrations(named({"0002_b.sql", "0001_a.sql"}));
  });
  EXPECT_EQ(msg, "migrations are not sorted by number at 0001_a.sql");
}

TEST(MigrationsTest, ChecksumIsSha256OfTheSql) {
  Migration m{"0001_a.sql", "abc"};
  EXPECT_EQ(m.checksum(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Migration empty{"0001_a.sql", ""};
  EXPECT_EQ(empty.checksum(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(MigrationsTest, LoadSortsAndIgnoresOtherFiles) {
  TempDir dir;
  dir.write("0002_second.sql", "CREATE TABLE b (id int);\n");
  dir.write("0001_first.sql", "CREATE TABLE a (id int);\n");
  dir.write("0010_tenth.sql", "");
  dir.write("README.md", "not a migration");
  dir.write("0003_notes.txt", "not a migration either");
  dir.write("0004_backup.sql~", "editor leftovers");
  fs::create_directory(dir.path() / "0005_dir.sql");  // a directory, not a file

  std::vector<Migration> loaded = load_migrations(dir.path().string());
  ASSERT_EQ(loaded.size(), 3u);
  EXPECT_EQ(loaded[0].name, "0001_first.sql");
  EXPECT_EQ(loaded[0].sql, "CREATE TABLE a (id int);\n");
  EXPECT_EQ(loaded[1].name, "0002_second.sql");
  EXPECT_EQ(loaded[1].sql, "CREATE TABLE b (id int);\n");
  EXPECT_EQ(loaded[2].name, "0010_tenth.sql");
  EXPECT_EQ(loaded[2].sql, "");
}

TEST(MigrationsTest, LoadKeepsBytesExactly) {
  TempDir dir;
  const std::string sql = "-- comment with ; and \\ and 'quotes'\r\nSELECT 'é';\n\n";
  dir.write("0001_bytes.sql", sql);
  auto loaded = load_migrations(dir.path().string());
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].sql, sql);
}

TEST(MigrationsTest, LoadOfAnEmptyDirectoryIsEmpty) {
  TempDir dir;
  EXPECT_TRUE(load_migrations(dir.path().string()).empty());
}

TEST(MigrationsTest, LoadRejectsBadNamesAndDuplicates) {
  {
    TempDir dir;
    dir.write("0001_ok.sql", "");
    dir.write("0002_Bad.sql", "");
    EXPECT_EQ(migration_error([&] { load_migrations(dir.path().string()); }),
              "migration file name '0002_Bad.sql' is not of the form NNNN_lowercase_name.sql");
  }
  {
    TempDir dir;
    dir.write("0001_one.sql", "");
    dir.write("0001_two.sql", "");
    EXPECT_EQ(migration_error([&] { load_migrations(dir.path().string()); }),
              "two migrations share the number 0001; give each file its own number");
  }
}

TEST(MigrationsTest, LoadOfAMissingDirectoryThrows) {
  TempDir dir;
  const std::string missing = (dir.path() / "nope").string();
  EXPECT_EQ(migration_error([&] { load_migrations(missing); }),
            "migrations directory '" + missing + "' does not exist");
  // A file is not a directory either.
  dir.write("file.sql", "");
  EXPECT_THROW(load_migrations((dir.path() / "file.sql").string()), MigrationError);
}

TEST(MigrationsTest, EmbeddedMigrationsAreValid) {
  EXPECT_NO_THROW(validate_migrations(embedded_migrations()));
}

// The binary carries migrations/ as it was at build time: same files, same bytes.
TEST(MigrationsTest, EmbeddedMigrationsMatchTheSourceTree) {
  const auto& embedded = embedded_migrations();
  const auto on_disk = load_migrations(IG_SOURCE_DIR "/migrations");
  ASSERT_EQ(embedded.size(), on_disk.size());
  for (std::size_t i = 0; i < embedded.size(); ++i) {
    EXPECT_EQ(embedded[i].name, on_disk[i].name);
    EXPECT_EQ(embedded[i].checksum(), on_disk[i].checksum()) << embedded[i].name;
  }
}

}  // namespace
}  // namespace infergate::infra
