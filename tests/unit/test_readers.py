"""Readers on generated fixtures in the exact upstream formats, and their failure modes."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from services.core.errors import DatasetFormatError, DatasetNotFoundError
from services.graph_loader.readers import reader_for
from services.graph_loader.readers.amazon import first_category_path, parse_product_line
from services.graph_loader.synthetic import SyntheticCatalogue
from tests.fixtures.formats import ML100K_GENRES, asin, ml100k_genre, write_amazon, write_generic, write_ml100k


def copy_raw(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "raw"
    shutil.copytree(source, target)
    return target


class TestMovieLensLatest:
    def test_reads_every_rating_and_movie(self, ml_raw: Path, catalogue: SyntheticCatalogue) -> None:
        raw = reader_for("ml-latest-small").read(ml_raw)
        assert len(raw.interactions) == len(catalogue.ratings)
        assert len(raw.items) == len(catalogue.movies)
        assert raw.interactions["timestamp"].dtype == np.int64
        first = catalogue.ratings[0]
        row = raw.interactions.iloc[0]
        assert (row["user"], row["item"], row["rating"], row["timestamp"]) == (
            str(first[0]),
            str(first[1]),
            first[2],
            first[3],
        )

    def test_attributes_titles_and_imdb_metadata(self, ml_raw: Path, catalogue: SyntheticCatalogue) -> None:
        raw = reader_for("ml-latest-small").read(ml_raw)
        movie = catalogue.movies[6]  # id % 7 == 0: title ends with ", The"
        item = raw.items[str(movie.movie_id)]
        assert item.title == f"The {movie.title.removesuffix(', The')} ({movie.year})"
        assert item.attributes["Genre"] == movie.genres
        assert item.attributes["Year"] == [str(movie.year)]
        assert item.attributes["Director"] == [movie.director]
        assert item.attributes["Actor"] == movie.actors  # billing order kept, &apos; decoded
        assert item.properties["imdb_id"] == f"tt{movie.movie_id + 100000:07d}"
        assert raw.schema.attributes == {
            "Genre": "HAS_GENRE",
            "Year": "RELEASED_IN",
            "Director": "DIRECTED_BY",
            "Actor": "HAS_ACTOR",
        }

    def test_apostrophe_entities_are_decoded(self, ml_raw: Path) -> None:
        raw = reader_for("ml-latest-small").read(ml_raw)
        names = {n for item in raw.items.values() for n in item.attributes.get("Actor", [])}
        assert any("O'Hara" in n for n in names)
        assert not any("&apos;" in n for n in names)

    def test_without_imdb_metadata_has_only_genre_and_year(self, ml_raw: Path, tmp_path: Path) -> None:
        raw_dir = copy_raw(ml_raw, tmp_path)
        (raw_dir / "movies_metadata.csv").unlink()
        raw = reader_for("ml-latest-small").read(raw_dir)
        assert list(raw.schema.attributes) == ["Genre", "Year"]

    def test_missing_file_names_it(self, ml_raw: Path, tmp_path: Path) -> None:
        raw_dir = copy_raw(ml_raw, tmp_path)
        (raw_dir / "movies.csv").unlink()
        with pytest.raises(DatasetNotFoundError, match=r"movies\.csv: file not found"):
            reader_for("ml-latest-small").read(raw_dir)

    def test_wrong_columns_are_named(self, ml_raw: Path, tmp_path: Path) -> None:
        raw_dir = copy_raw(ml_raw, tmp_path)
        (raw_dir / "ratings.csv").write_text("user,movie,stars,time\n1,3,4.0,100\n")
        with pytest.raises(DatasetFormatError, match=r"missing column\(s\) \['userId', 'movieId'"):
            reader_for("ml-latest-small").read(raw_dir)

    def test_non_numeric_rating_names_the_row(self, ml_raw: Path, tmp_path: Path) -> None:
        raw_dir = copy_raw(ml_raw, tmp_path)
        (raw_dir / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,3,4.0,100\n1,6,good,101\n")
        with pytest.raises(DatasetFormatError, match=r"'rating' needs numbers, row 2 has 'good'"):
            reader_for("ml-latest-small").read(raw_dir)

    def test_fractional_timestamp_is_rejected(self, ml_raw: Path, tmp_path: Path) -> None:
        raw_dir = copy_raw(ml_raw, tmp_path)
        (raw_dir / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,3,4.0,100.5\n")
        with pytest.raises(DatasetFormatError, match="'timestamp' needs integers"):
            reader_for("ml-latest-small").read(raw_dir)

    def test_latin1_movies_file_is_a_clear_encoding_error(self, ml_raw: Path, tmp_path: Path) -> None:
        raw_dir = copy_raw(ml_raw, tmp_path)
        (raw_dir / "movies.csv").write_bytes("movieId,title,genres\n3,Amélie (2001),Comedy\n".encode("latin-1"))
        with pytest.raises(DatasetFormatError, match=r"movies\.csv: not valid utf-8"):
            reader_for("ml-latest-small").read(raw_dir)

    def test_empty_file(self, ml_raw: Path, tmp_path: Path) -> None:
        raw_dir = copy_raw(ml_raw, tmp_path)
        (raw_dir / "ratings.csv").write_text("")
        with pytest.raises(DatasetFormatError, match="file is empty"):
            reader_for("ml-latest-small").read(raw_dir)


class TestMovieLens100K:
    def test_reads_latin1_items_and_genre_flags(self, tmp_path: Path, catalogue: SyntheticCatalogue) -> None:
        raw_dir = write_ml100k(catalogue, tmp_path / "ml-100k")
        with (raw_dir / "u.item").open("a", encoding="latin-1") as handle:
            handle.write(
                "9999|Amélie, Le (2001)|01-Jan-2001||http://x|" + "|".join(["0"] * 5 + ["1"] + ["0"] * 13) + "\n"
            )
        raw = reader_for("ml-100k").read(raw_dir)
        assert len(raw.interactions) == len(catalogue.ratings)
        assert raw.items["9999"].title == "Le Amélie (2001)"
        assert raw.items["9999"].attributes["Genre"] == ["Comedy"]
        movie = catalogue.movies[0]
        wanted = {ml100k_genre(g) for g in movie.genres}
        assert raw.items[str(movie.movie_id)].attributes["Genre"] == [g for g in ML100K_GENRES if g in wanted]
        assert raw.items[str(movie.movie_id)].properties["imdb_url"].startswith("http://us.imdb.com/")
        assert set(raw.interactions["rating"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}

    def test_bad_genre_flag(self, tmp_path: Path, catalogue: SyntheticCatalogue) -> None:
        raw_dir = write_ml100k(catalogue, tmp_path / "ml-100k")
        with (raw_dir / "u.item").open("a", encoding="latin-1") as handle:
            handle.write("9999|X (2001)|01-Jan-2001||http://x|" + "|".join(["2"] * 19) + "\n")
        with pytest.raises(DatasetFormatError, match="genre flags must be 0 or 1, movie '9999'"):
            reader_for("ml-100k").read(raw_dir)

    def test_missing_genre_file(self, tmp_path: Path, catalogue: SyntheticCatalogue) -> None:
        raw_dir = write_ml100k(catalogue, tmp_path / "ml-100k")
        (raw_dir / "u.genre").unlink()
        with pytest.raises(DatasetNotFoundError, match=r"u\.genre"):
            reader_for("ml-100k").read(raw_dir)


class TestAmazon:
    @pytest.mark.parametrize("style", ["2014", "2018"])
    def test_reads_ratings_and_metadata(self, tmp_path: Path, catalogue: SyntheticCatalogue, style: str) -> None:
        raw_dir = write_amazon(catalogue, tmp_path / "amazon", style=style)
        raw = reader_for("amazon").read(raw_dir)
        assert raw.name == "amazon-beauty"
        assert len(raw.interactions) == len(catalogue.ratings)
        movie, following = catalogue.movies[0], catalogue.movies[1:3]
        item = raw.items[asin(movie.movie_id)]
        assert item.title == f"{movie.title} & Co"  # HTML entity decoded
        assert item.attributes["Brand"] == [movie.director]
        assert item.attributes["Category"] == [movie.genres[0], f"{movie.genres[0]} & More"]  # root dropped
        assert item.links["ALSO_BOUGHT"] == [asin(m.movie_id) for m in following] + ["B999999999"]
        if style == "2014":
            assert item.links["BOUGHT_TOGETHER"] == [asin(following[0].movie_id)]
        else:
            assert item.links["ALSO_VIEWED"] == [asin(following[1].movie_id)]
        assert raw.schema.links == ("ALSO_BOUGHT", "ALSO_VIEWED", "BOUGHT_TOGETHER")

    def test_uncompressed_metadata(self, tmp_path: Path, catalogue: SyntheticCatalogue) -> None:
        raw_dir = write_amazon(catalogue, tmp_path / "amazon")
        meta = raw_dir / "meta_Beauty.json.gz"
        (raw_dir / "meta_Beauty.json").write_bytes(gzip.decompress(meta.read_bytes()))
        meta.unlink()
        assert len(reader_for("amazon").read(raw_dir).items) == len(catalogue.movies)

    def test_code_in_metadata_is_never_run(self, tmp_path: Path) -> None:
        marker = tmp_path / "pwned"
        line = f"__import__('pathlib').Path({str(marker)!r}).touch()"
        with pytest.raises(DatasetFormatError, match="neither JSON nor a Python literal"):
            parse_product_line(line, path=Path("meta.json"), number=3)
        assert not marker.exists()

    def test_non_object_line(self) -> None:
        with pytest.raises(DatasetFormatError, match=r"meta\.json:7: expected one object per line"):
            parse_product_line("[1, 2]", path=Path("meta.json"), number=7)

    def test_category_is_required_when_ambiguous(self, tmp_path: Path, catalogue: SyntheticCatalogue) -> None:
        raw_dir = write_amazon(catalogue, tmp_path / "amazon")
        write_amazon(catalogue, raw_dir, category="Toys")
        with pytest.raises(DatasetNotFoundError, match=r"exactly one ratings_<Category>\.csv.*pass --category"):
            reader_for("amazon").read(raw_dir)
        assert reader_for("amazon", category="Toys").read(raw_dir).name == "amazon-toys"

    def test_first_category_path(self) -> None:
        assert first_category_path({"categories": [["Beauty", "Skin Care", "Face"], ["Beauty", "Hair"]]}) == [
            "Skin Care",
            "Face",
        ]
        assert first_category_path({"category": ["Beauty"]}) == ["Beauty"]
        assert first_category_path({}) == []


class TestGeneric:
    def test_mapping_drives_labels_links_and_properties(self, tmp_path: Path, catalogue: SyntheticCatalogue) -> None:
        raw = reader_for("generic").read(write_generic(catalogue, tmp_path / "shop"))
        assert raw.name == "shop"
        assert raw.schema.attributes == {"Genre": "HAS_GENRE", "Studio": "MADE_BY"}
        assert raw.schema.links == ("SIMILAR_TO",)
        movie = catalogue.movies[0]
        item = raw.items[str(movie.movie_id)]
        assert item.attributes == {"Genre": movie.genres, "Studio": [movie.director]}
        assert item.links == {"SIMILAR_TO": [str(catalogue.movies[1].movie_id)]}
        assert item.properties == {"url": f"https://example.test/{movie.movie_id}"}
        assert raw.interactions["user"].iloc[0] == f"u{catalogue.ratings[0][0]}"

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (
                {"attributes": [{"field": "g", "label": "User", "relationship": "HAS_G"}]},
                "must be PascalCase",
            ),
            (
                {"attributes": [{"field": "g", "label": "Genre", "relationship": "has genre"}]},
                "UPPER_SNAKE_CASE",
            ),
            ({"links": [{"field": "s", "relationship": "RATED"}]}, "not RATED"),
            ({"name": "Bad Name"}, "name: String should match pattern"),
            ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ],
    )
    def test_bad_mapping_is_one_clear_error(
        self, tmp_path: Path, catalogue: SyntheticCatalogue, change: dict, message: str
    ) -> None:
        import json

        raw_dir = write_generic(catalogue, tmp_path / "shop")
        mapping = json.loads((raw_dir / "mapping.json").read_text()) | change
        (raw_dir / "mapping.json").write_text(json.dumps(mapping))
        with pytest.raises(DatasetFormatError, match=message):
            reader_for("generic").read(raw_dir)

    def test_invalid_json_line_is_located(self, tmp_path: Path, catalogue: SyntheticCatalogue) -> None:
        raw_dir = write_generic(catalogue, tmp_path / "shop")
        with (raw_dir / "items.jsonl").open("a") as handle:
            handle.write("{not json}\n")
        with pytest.raises(DatasetFormatError, match=rf"items\.jsonl:{len(catalogue.movies) + 1}: invalid JSON"):
            reader_for("generic").read(raw_dir)

    def test_unknown_kind(self) -> None:
        from services.core.errors import ConfigError

        with pytest.raises(ConfigError, match="unknown dataset kind 'imdb'"):
            reader_for("imdb")
