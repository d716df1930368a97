/// A [RemoteAttachmentStorage] for the PowerSync SDK's attachment queue,
/// backed by uplink's attachment routes:
///
///     POST   /api/attachments/upload-url        → {id, key, uploadUrl, method, headers, expiresAt}
///     POST   /api/attachments/{id}/complete     → {id, size, contentType}
///     GET    /api/attachments/{id}/download-url → {downloadUrl, expiresAt, contentType, size}
///     DELETE /api/attachments/{id}              → 204 (also when already gone)
///
/// Files whose `size` is at least [UplinkAttachmentStorage.multipartThreshold]
/// go in parts (`POST /api/attachments/multipart`, `…/{id}/multipart/parts`,
/// `GET …/{id}/multipart`, `…/{id}/multipart/complete`), one part in memory
/// at a time: a dropped connection costs one part, and the next upload of
/// the same id (after a restart too) skips the parts storage already lists.
///
/// The bytes go straight to storage (S3 or uplink's local store) with the
/// signed headers uplink returns; uplink only signs and records.
library;

import 'dart:convert';
import 'dart:math';
import 'dart:typed_data';

import 'package:http/http.dart' as http;
import 'package:powersync_core/attachments/attachments.dart';

/// An error from uplink or from storage, with the HTTP status and uplink's
/// error code (`not_uploaded`, `forbidden`, `not_found`…).
class UplinkAttachmentError implements Exception {
  final String message;
  final int status;
  final String? code;
  UplinkAttachmentError(this.message, this.status, this.code);

  /// Retrying cannot fix these: the attachment is gone or not the user's.
  bool get isPermanent => status == 403 || status == 404;

  @override
  String toString() => 'UplinkAttachmentError($status, $code): $message';
}

class UplinkAttachmentStorage implements RemoteAttachmentStorage {
  final Uri baseUrl;

  /// A bearer token uplink accepts: pass `connector.token`, which shares
  /// the connector's cached PowerSync token (no token request per file).
  final Future<String> Function() getToken;
  final http.Client _http;

  /// Files of at least this many bytes (by `Attachment.size`) go in parts;
  /// `null` sends every file in one request.
  final int? multipartThreshold;

  /// Called as parts are stored: bytes stored so far of `total`.
  final void Function(String id, int uploaded, int total)? onProgress;

  UplinkAttachmentStorage({
    required String baseUrl,
    required this.getToken,
    http.Client? client,
    this.multipartThreshold = 32 * 1024 * 1024,
    this.onProgress,
  })  : baseUrl = Uri.parse(baseUrl.endsWith('/') ? baseUrl : '$baseUrl/'),
        _http = client ?? http.Client();

  @override
  Future<void> uploadFile(
      Stream<Uint8List> fileData, Attachment attachment) async {
    final size = attachment.size;
    final threshold = multipartThreshold;
    if (threshold != null && size != null && size > 0 && size >= threshold) {
      await uploadInParts(attachment.id, attachment.filename,
          attachment.mediaType, size, fileData);
      return;
    }
    final bytes = BytesBuilder(copy: false);
    await for (final chunk in fileData) {
      bytes.add(chunk);
    }
    final body = bytes.takeBytes();
    final target = await _api('POST', 'api/attachments/upload-url', {
      'id': attachment.id,
      'filename': attachment.filename,
      // Without a media type uplink derives one from the filename's extension.
      if (attachment.mediaType != null) 'contentType': attachment.mediaType,
      'size': body.length,
    }) as Map<String, dynamic>;
    // Send the signed headers exactly; the client sets Content-Length itself.
    final signed = ((target['headers'] as Map?) ?? {}).cast<String, String>();
    final headers = {
      for (final MapEntry(:key, :value) in signed.entries)
        if (key.toLowerCase() != 'content-length') key: value,
    };
    final request = http.Request(
        (target['method'] as String?) ?? 'PUT',
        Uri.parse(target['uploadUrl'] as String))
      ..headers.addAll(headers)
      ..bodyBytes = body;
    final put = await _http.send(request);
    await put.stream.drain<void>();
    if (put.statusCode < 200 || put.statusCode >= 300) {
      throw UplinkAttachmentError(
          'storage refused the upload of ${attachment.id}', put.statusCode, null);
    }
    await _api('POST',
        'api/attachments/${Uri.encodeComponent(attachment.id)}/complete');
  }

  /// Uploads the `size` bytes of `data` as attachment `id` in parts,
  /// resuming the upload in progress for this id if it has the same size.
  Future<void> uploadInParts(String id, String filename, String? contentType,
      int size, Stream<Uint8List> data) async {
    final path = 'api/attachments/${Uri.encodeComponent(id)}/multipart';
    Map<String, dynamic>? upload;
    try {
      upload = await _api('GET', path) as Map<String, dynamic>;
    } on UplinkAttachmentError catch (e) {
      if (e.status != 404) rethrow;
    }
    if (upload != null && upload['size'] != size) {
      await _api('DELETE',
          '$path?uploadId=${Uri.encodeQueryComponent(upload['uploadId'] as String)}');
      upload = null;
    }
    upload ??= await _api('POST', 'api/attachments/multipart', {
      'id': id,
      'filename': filename,
      if (contentType != null) 'contentType': contentType,
      'size': size,
    }) as Map<String, dynamic>;
    final uploadId = upload['uploadId'] as String;
    final partSize = upload['partSize'] as int;
    final partCount = upload['partCount'] as int;
    int expected(int n) =>
        n < partCount ? partSize : size - partSize * (partCount - 1);
    final etags = <int, String>{
      for (final part in (upload['parts'] as List).cast<Map<String, dynamic>>())
        if (part['size'] == expected(part['partNumber'] as int))
          part['partNumber'] as int: part['etag'] as String,
    };
    var uploaded = etags.keys.fold<int>(0, (sum, n) => sum + expected(n));
    onProgress?.call(id, uploaded, size);
    // The stream is read once, in order; parts storage holds are skipped.
    var number = 1;
    final buffer = BytesBuilder(copy: false);
    await for (final chunk in data) {
      var offset = 0;
      while (offset < chunk.length) {
        if (number > partCount) {
          throw UplinkAttachmentError(
              'the file of $id is longer than its size $size', 400, null);
        }
        final take = min(expected(number) - buffer.length, chunk.length - offset);
        buffer.add(Uint8List.sublistView(chunk, offset, offset + take));
        offset += take;
        if (buffer.length == expected(number)) {
          final bytes = buffer.takeBytes();
          if (!etags.containsKey(number)) {
            etags[number] = await _putPart(id, uploadId, number, bytes);
            uploaded += bytes.length;
            onProgress?.call(id, uploaded, size);
          }
          number++;
        }
      }
    }
    if (number <= partCount) {
      throw UplinkAttachmentError(
          'the file of $id ended before its size $size', 400, null);
    }
    await _api('POST', '$path/complete', {
      'uploadId': uploadId,
      'parts': [
        for (var n = 1; n <= partCount; n++) {'partNumber': n, 'etag': etags[n]},
      ],
    });
  }

  Future<String> _putPart(
      String id, String uploadId, int number, Uint8List bytes) async {
    final signed = await _api(
        'POST', 'api/attachments/${Uri.encodeComponent(id)}/multipart/parts', {
      'uploadId': uploadId,
      'partNumbers': [number],
    }) as Map<String, dynamic>;
    final part = (signed['parts'] as List).first as Map<String, dynamic>;
    final signedHeaders = ((part['headers'] as Map?) ?? {}).cast<String, String>();
    final request = http.Request(
        (part['method'] as String?) ?? 'PUT', Uri.parse(part['url'] as String))
      ..headers.addAll({
        for (final MapEntry(:key, :value) in signedHeaders.entries)
          if (key.toLowerCase() != 'content-length') key: value,
      })
      ..bodyBytes = bytes;
    final put = await _http.send(request);
    await put.stream.drain<void>();
    final etag = put.headers['etag'];
    if (put.statusCode < 200 || put.statusCode >= 300 || etag == null) {
      throw UplinkAttachmentError(
          'storage refused part $number of $id', put.statusCode, null);
    }
    return etag;
  }

  @override
  Future<Stream<List<int>>> downloadFile(Attachment attachment) async {
    final target = await _api('GET',
            'api/attachments/${Uri.encodeComponent(attachment.id)}/download-url')
        as Map<String, dynamic>;
    final response = await _http
        .send(http.Request('GET', Uri.parse(target['downloadUrl'] as String)));
    if (response.statusCode != 200) {
      await response.stream.drain<void>();
      throw UplinkAttachmentError('storage refused the download of '
          '${attachment.id}', response.statusCode, null);
    }
    return response.stream;
  }

  @override
  Future<void> deleteFile(Attachment attachment) async {
    await _api(
        'DELETE', 'api/attachments/${Uri.encodeComponent(attachment.id)}');
  }

  Future<Object?> _api(String method, String path,
      [Map<String, Object?>? body]) async {
    final request = http.Request(method, baseUrl.resolve(path))
      ..headers['Authorization'] = 'Bearer ${await getToken()}';
    if (body != null) {
      request
        ..headers['Content-Type'] = 'application/json'
        ..body = jsonEncode(body);
    }
    final response = await http.Response.fromStream(await _http.send(request));
    if (response.statusCode == 204) return null;
    Object? json;
    try {
      json = response.body.isEmpty ? null : jsonDecode(response.body);
    } on FormatException {
      json = null;
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      final error = json is Map ? json['error'] as Map? : null;
      throw UplinkAttachmentError(
          '$method /$path: ${error?['message'] ?? 'HTTP ${response.statusCode}'}',
          response.statusCode,
          error?['code'] as String?);
    }
    return json;
  }
}

/// An [AttachmentErrorHandler] for uplink's answers: give up (archive) on
/// `403` and `404`, which retrying cannot fix; retry everything else,
/// including `409 not_uploaded` (the owner's device has not uploaded the
/// file yet) and `503`.
class UplinkAttachmentErrorHandler implements AttachmentErrorHandler {
  const UplinkAttachmentErrorHandler();

  bool _retry(Object exception) =>
      !(exception is UplinkAttachmentError && exception.isPermanent);

  @override
  Future<bool> onDownloadError(Attachment attachment, Object exception) async =>
      _retry(exception);

  @override
  Future<bool> onUploadError(Attachment attachment, Object exception) async =>
      _retry(exception);

  @override
  Future<bool> onDeleteError(Attachment attachment, Object exception) async =>
      _retry(exception);
}
