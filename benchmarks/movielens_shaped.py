"""A MovieLens-shaped dataset at any multiple of ml-latest-small, in ml-latest-small's file format.

The shape is calibrated on ml-latest-small (610 users, 9,742 movies, 100,836 ratings, IMDb people):
- users: SCALE × 610; ratings per user 20 + lognormal(median 50, sigma 1.4): median ≈ 70, mean ≈ 150, a long tail
  of users with thousands of ratings, as in the real data (quartiles 35 / 70 / 168, max 2,698);
- movies: 9,742 × SCALE^0.55 (catalogues grow slower than audiences: ML-25M has 62k movies for 162k users);
  popularity is Zipf-like, so most movies have a handful of ratings and a few have thousands;
- genres: the real 20 genres at their real frequencies (Drama on 45% of movies: at 100× a supernode of ~55k
  movies), 1 + Poisson(1.27) genres per movie; years skewed to recent decades;
- people: 0.42 directors and 1.05 actors per movie in the pool, 1.1 directors and 3 actors per movie, chosen by
  Zipf-like popularity (a few prolific people with hundreds of movies at scale);
- each user prefers 3 genres: half their ratings come from those genres, rated higher.
Everything derives from one seed. `shape_summary` gives the quantiles the benchmark prints beside the real data's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from services.graph_loader.synthetic import SyntheticCatalogue, SyntheticMovie, write_ml_latest_small

BASE_USERS = 610
BASE_MOVIES = 9742
ITEM_GROWTH = 0.55
GENRE_FREQUENCY = {
    "Drama": 4361,
    "Comedy": 3756,
    "Thriller": 1894,
    "Action": 1828,
    "Romance": 1596,
    "Adventure": 1263,
    "Crime": 1199,
    "Sci-Fi": 980,
    "Horror": 978,
    "Fantasy": 779,
    "Children": 664,
    "Animation": 611,
    "Mystery": 573,
    "Documentary": 440,
    "War": 382,
    "Musical": 334,
    "Western": 167,
    "IMAX": 158,
    "Film-Noir": 87,
}
RATING_VALUES = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0])
RATING_SHARE = np.array([0.014, 0.028, 0.018, 0.075, 0.055, 0.199, 0.13, 0.266, 0.085, 0.131])
_SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "tor", "sil", "mar", "den", "quo", "bel", "nir", "os", "tal", "ur")


def _zipf_cdf(n: int, exponent: float, offset: float) -> np.ndarray:
    weights = 1.0 / np.power(np.arange(n) + offset, exponent)
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _draw(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn by a cumulative distribution: a binary search per draw, not a pass over the whole cdf."""
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _name(rng: np.random.Generator, index: int) -> str:
    parts = rng.choice(len(_SYLLABLES), size=3)
    return "".join(_SYLLABLES[p] for p in parts).capitalize() + f" {index}"


def generate(scale: float, *, seed: int = 0) -> SyntheticCatalogue:
    rng = np.random.default_rng(seed)
    users = max(1, round(BASE_USERS * scale))
    movies = max(100, round(BASE_MOVIES * scale**ITEM_GROWTH))
    genres = list(GENRE_FREQUENCY)
    genre_p = np.array(list(GENRE_FREQUENCY.values()), dtype=float)
    genre_p /= genre_p.sum()
    directors = [_name(rng, i) for i in range(round(movies * 0.42))]
    actors = [_name(rng, i) for i in range(round(movies * 1.05))]
    director_cdf = _zipf_cdf(len(directors), 0.8, 5.0)
    actor_cdf = _zipf_cdf(len(actors), 0.8, 5.0)

    # Movie i's popularity rank is a random permutation, so popularity is independent of id and genre.
    popularity = rng.permutation(movies)
    catalogue = SyntheticCatalogue(movies=[])
    movie_genres: list[list[int]] = []
    for index in range(movies):
        count = min(len(genres), 1 + rng.poisson(1.27))
        chosen = rng.choice(len(genres), size=count, replace=False, p=genre_p)
        movie_genres.append(sorted(chosen.tolist()))
        people = _draw(rng, actor_cdf, 3)
        catalogue.movies.append(
            SyntheticMovie(
                movie_id=index + 1,
                title=_name(rng, index + 1),
                year=int(max(1902, 2018 - math.floor(rng.exponential(18.0)))),
                genres=[genres[g] for g in movie_genres[-1]],
                director=directors[int(_draw(rng, director_cdf, 1)[0])],
                actors=list(dict.fromkeys(actors[int(p)] for p in people)),
            )
        )

    # Popularity-weighted sampling, overall and within each genre (by the same popularity order).
    movie_weight = 1.0 / np.power(popularity + 30.0, 1.1)
    overall_cdf = np.cumsum(movie_weight) / movie_weight.sum()
    by_genre = {g: np.array([m for m in range(movies) if g in movie_genres[m]]) for g in range(len(genres))}
    genre_cdf = {
        g: np.cumsum(movie_weight[members]) / movie_weight[members].sum()
        for g, members in by_genre.items()
        if len(members)
    }
    liked_sets = [set(g) for g in movie_genres]
    counts = np.minimum(movies // 2, 20 + np.round(rng.lognormal(math.log(50.0), 1.4, size=users)).astype(int))
    for user in range(users):
        count = int(counts[user])
        liked = rng.choice(len(genres), size=3, replace=False, p=genre_p)
        chosen: dict[int, None] = {}
        while len(chosen) < count:
            need = count - len(chosen)
            from_liked = rng.random(need) < 0.5
            draws = _draw(rng, overall_cdf, need)
            for slot in np.flatnonzero(from_liked):
                genre = int(liked[rng.integers(3)])
                if genre in genre_cdf:
                    draws[slot] = by_genre[genre][_draw(rng, genre_cdf[genre], 1)[0]]
            chosen.update(dict.fromkeys(draws.tolist()))
        picked = list(chosen)[:count]
        fond = np.array([bool(liked_sets[m] & set(liked.tolist())) for m in picked])
        ratings = RATING_VALUES[_draw(rng, np.cumsum(RATING_SHARE), count)]
        ratings = np.where(fond, np.minimum(5.0, ratings + 0.5), ratings)
        ts = 820_000_000 + int(rng.integers(0, 700_000_000)) + np.cumsum(rng.choice([0, 1, 60, 3600, 86_400], count))
        catalogue.ratings.extend(
            (user + 1, m + 1, float(r), int(t)) for m, r, t in zip(picked, ratings.tolist(), ts.tolist(), strict=True)
        )
    return catalogue


def write(scale: float, out: Path, *, seed: int = 0) -> Path:
    return write_ml_latest_small(generate(scale, seed=seed), out)


def shape_summary(ratings_csv: Path) -> dict[str, object]:
    """Counts and the quantiles of ratings per user and per movie, and the largest genre's share."""
    import pandas as pd

    ratings = pd.read_csv(ratings_csv, usecols=["userId", "movieId"])
    per_user = ratings.groupby("userId").size()
    per_movie = ratings.groupby("movieId").size()
    movies = pd.read_csv(ratings_csv.parent / "movies.csv", usecols=["genres"])
    genre_sizes = movies["genres"].str.split("|").explode().value_counts()
    quantiles = [25, 50, 75, 99, 100]
    return {
        "ratings": len(ratings),
        "users": int(per_user.size),
        "movies": len(movies),
        "per_user_q25_50_75_99_max": [int(v) for v in np.percentile(per_user, quantiles)],
        "per_movie_q25_50_75_99_max": [int(v) for v in np.percentile(per_movie, quantiles)],
        "largest_genre": f"{genre_sizes.index[0]} ({int(genre_sizes.iloc[0]):,} movies)",
    }
